"""The consumer: a use case's events from the topic into same-day features in Feast's online store.

Each poll reads a batch after the committed position, applies it to the state (the use case's
`STREAM.state`),
pushes the changed rows to Feast's push sources, and then commits the new position, the state, the
events set aside and the rows produced, in one transaction of the topic. Killed between the push and
the commit, it restarts from the last commit and pushes the same values again: an event is never
lost and never counted twice, because the state it counts in is committed with the position.

Only the online store is written (`PushMode.ONLINE`): the offline side of the same features is the
dbt models, rebuilt from the end-of-day file, which stays the source of truth.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from mlplatform.faults import crash_point
from mlplatform.streaming.events import BadEvent, SameDayStream, iso_utc
from mlplatform.streaming.topic import Checkpoint, Topic

if TYPE_CHECKING:
    from feast import FeatureStore

logger = logging.getLogger(__name__)
CONSUMER = "same_day_features"
KEPT_COPY = "same_day_features.last_commit.json"  # under the state directory's stream/
BATCH_SIZE = 5_000


@dataclass
class Poll:
    events: int = 0
    applied: int = 0
    set_aside: Counter = field(default_factory=Counter)
    rows_pushed: int = 0
    position: str | None = None
    published_at: list[float] = field(default_factory=list)  # each event's publication (wall clock)
    committed_at: float | None = None  # its features were online before this
    reset: str | None = None  # the topic lost what it held (its server restarted empty): what was done


def _stored(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "event_timestamp": iso_utc(row["event_timestamp"])}


def active_stream() -> SameDayStream:
    """The enabled use case's stream (its hooks' `STREAM`); a use case without one has no consumer."""
    from mlplatform.usecases import active

    stream = getattr(active().module, "STREAM", None)
    if stream is None:
        raise ValueError(f"the use case {active().name!r} has no same-day stream: its hooks module "
                         f"{active().hooks} defines no STREAM")
    return stream


class Consumer:
    def __init__(self, topic: Topic, store: FeatureStore, name: str = CONSUMER, batch_size: int = BATCH_SIZE,
                 stream: SameDayStream | None = None, kept_copy: Path | None = None):
        """`kept_copy`: a file (in the state directory) that keeps a copy of each commit. A consumer
        started after the topic's server came back empty (Redis restarted without its data, the
        commit with it) starts from that copy's counts instead of from nothing."""
        self.topic, self.store, self.name, self.batch_size = topic, store, name, batch_size
        self.stream = stream or active_stream()
        self.kept_copy = kept_copy
        self.copy_problem: str | None = None  # why the last copy could not be kept, said once
        self.checkpoint = topic.checkpoint(name)
        if self.checkpoint.position is None and kept_copy is not None and kept_copy.exists():
            # The topic has no commit of ours, and we had one: it lost it. The first poll says so.
            self.checkpoint = Checkpoint(**json.loads(kept_copy.read_text()))
        self.state = self.stream.state(self.checkpoint.state)

    def _commit(self, checkpoint: Checkpoint, set_aside: list[dict[str, Any]], produced: list[dict[str, Any]]) -> None:
        self.topic.commit(self.name, checkpoint, set_aside, produced)
        if self.kept_copy is not None:  # after the topic's commit: the copy is never ahead of it
            self._keep_copy(checkpoint)

    def _keep_copy(self, checkpoint: Checkpoint) -> None:
        """The copy is a backup of what the topic holds: a state directory that cannot take it (full,
        read-only) is said once, and the stream goes on; the next copy that can be written replaces it."""
        from mlplatform.ingest.files import write_bytes_atomically

        try:
            self.kept_copy.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomically(self.kept_copy, json.dumps(checkpoint.__dict__).encode())
        except OSError as err:
            if self.copy_problem is None:
                self.copy_problem = (f"cannot keep a copy of the commit in {self.kept_copy} ({err.strerror or err}): "
                                     "the stream goes on; a consumer started after its topic's server came back "
                                     "empty would start from an older copy")
                logger.warning(self.copy_problem)
            return
        if self.copy_problem is not None:
            logger.warning(f"the copy of the commit is kept again in {self.kept_copy}")
            self.copy_problem = None

    def poll(self) -> Poll:
        """One batch: read, apply, push, commit. On any error the state goes back to the last commit."""
        reset = self._after_a_lost_topic()
        entries = self.topic.read(self.checkpoint.position, self.batch_size)
        report = Poll(events=len(entries), position=self.checkpoint.position, reset=reset)
        if not entries:
            return report
        try:
            produced, set_aside = [], []
            for entry in entries:
                try:
                    changed = self.state.apply(self.stream.parse(entry.payload))
                except BadEvent as bad:
                    set_aside.append({"position": entry.position, "payload": entry.payload,
                                      "reason": bad.reason, "detail": bad.detail})
                    report.set_aside[bad.reason] += 1
                    continue
                report.applied += 1
                produced += [{"view": view, "row": row, "position": entry.position} for view, row in changed]
            report.rows_pushed = self._push(produced)
            crash_point("stream_pushed")  # pushed, not committed: a restart pushes the same values again
            checkpoint = Checkpoint(entries[-1].position, self.checkpoint.consumed + len(entries),
                                    self.state.to_dict(), time.time())
            self._commit(checkpoint, set_aside, [{**p, "row": _stored(p["row"])} for p in produced])
        except BaseException:
            self.state = self.stream.state(self.checkpoint.state)
            raise
        self.checkpoint = checkpoint
        report.position, report.committed_at = checkpoint.position, checkpoint.committed_at
        report.published_at = [e.published_at for e in entries]
        return report

    def _after_a_lost_topic(self) -> str | None:
        """When the topic lost what it held (Redis restarted empty: its stream, this consumer's
        commit), start over on the new topic from its first event, keeping the state: the events
        taken before the loss still count in the same-day features. The events published before
        the loss and not yet taken are gone; the days' files rebuild those features when they land.
        Returns what happened, or None."""
        if self.checkpoint.position is None:
            return None
        stored, published = self.topic.checkpoint(self.name), self.topic.published()
        if stored.position is not None and published >= self.checkpoint.consumed:
            return None
        lost = self.checkpoint.consumed
        self.checkpoint = Checkpoint(None, 0, self.state.to_dict(), time.time())
        self._commit(self.checkpoint, [], [])
        return (f"the topic {self.topic.where} lost its events and this consumer's position (its server restarted "
                f"empty): the {lost} events taken before still count; reading its new events from the first")

    def _push(self, produced: list[dict[str, Any]]) -> int:
        """Push each entity's newest row (the online store keeps one per entity)."""
        import pandas as pd
        from feast.data_source import PushMode

        pushed = 0
        for view in self.stream.views:
            newest = {p["row"][view.key]: p["row"] for p in produced if p["view"] == view.view}
            if newest:
                self.store.push(view.push_source, pd.DataFrame(list(newest.values())), to=PushMode.ONLINE)
                pushed += len(newest)
        return pushed

    def follow(self, poll_interval_s: float = 0.2, stop: Callable[[], bool] = lambda: False,
               on_poll: Callable[[Poll], None] | None = None) -> None:
        """Poll until `stop()`; sleep only when the topic had nothing new. A poll that fails (the
        online store busy, Redis away) is retried from the last commit after a pause."""
        while not stop():
            try:
                report = self.poll()
            except Exception as err:  # noqa: BLE001 - a long-lived process reports and retries
                from mlplatform.profile import lost_service

                setting = lost_service(err)
                lost = f"the server of {setting} does not answer, " if setting else ""
                print(f"poll failed: {lost}retrying from position {self.checkpoint.position or 'the start'} "
                      f"every {max(2.0, poll_interval_s):g} s ({type(err).__name__}: {err})", flush=True)
                time.sleep(max(2.0, poll_interval_s))
                continue
            if report.reset:
                print(report.reset, flush=True)
            if on_poll and report.events:
                on_poll(report)
            if report.events < self.batch_size:
                time.sleep(poll_interval_s)

    def lag(self) -> int:
        """Events published and not yet committed by this consumer."""
        return self.topic.published() - self.checkpoint.consumed


def stream_status(paths) -> dict[str, Any]:
    """What the `same_day_stream` asset and `mlplatform status` report: events published and
    consumed, the lag, the age of the last commit, the newest event taken, events set aside."""
    from mlplatform.streaming.topic import open_topic

    topic = open_topic(paths)
    try:
        checkpoint, published, set_aside = topic.checkpoint(CONSUMER), topic.published(), topic.set_aside()
    finally:
        topic.close()
    reasons = dict(Counter(bad["reason"] for bad in set_aside))
    age = round(time.time() - checkpoint.committed_at, 1) if checkpoint.committed_at else None
    return {"topic": topic.where, "published": published, "consumed": checkpoint.consumed,
            "lag_events": published - checkpoint.consumed, "seconds_since_commit": age,
            "latest_event": (checkpoint.state or {}).get("watermark"), "set_aside": len(set_aside),
            "set_aside_by_reason": reasons}


def describe(report: Poll) -> str:
    bad = ", ".join(f"{n} {reason}" for reason, n in sorted(report.set_aside.items()))
    return (f"{datetime.now():%H:%M:%S} {report.events} event(s): {report.applied} applied"
            + (f", set aside {bad}" if bad else "") + f"; {report.rows_pushed} row(s) pushed online")
