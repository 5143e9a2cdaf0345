"""Where a use case's events wait between the feed and the consumer: an append-only log with positions.

    embedded    a SQLite file under $MLPLATFORM_HOME/stream: no server for `make run`, safe for one
                writer and many readers in different processes (WAL), durable across kill -9.
    production  a Redis Stream on MLPLATFORM_REDIS_URL (the Redis that is already Celery's broker
                and Feast's online store).

Beside the events, a topic keeps what the consumer must commit with its position, in one
transaction, so that a consumer killed at any moment restarts where its last commit left it: its
state (its stream's `state`), the events it set aside with their reason, and the feature rows it produced
(the history the skew check compares with dbt). Kafka would fit the same interface.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any



def topic_name() -> str:
    """One topic per use case, named after it."""
    from mlplatform.usecases import active

    return active().name


def topic_file(paths) -> Path:
    """The embedded topic's SQLite file."""
    return paths.stream / f"{topic_name()}.db"


@dataclass
class Checkpoint:
    position: str | None = None  # the last event taken into account (None: none yet)
    consumed: int = 0            # how many events that is
    state: dict[str, Any] = field(default_factory=dict)
    committed_at: float | None = None  # wall clock, seconds


@dataclass(frozen=True)
class Entry:
    position: str
    payload: str
    published_at: float  # wall clock, seconds


class Topic(ABC):
    """An append-only log of events with the consumer's commits beside it."""

    where: str  # for messages: the file or the server

    @abstractmethod
    def publish(self, payloads: list[str]) -> None: ...

    @abstractmethod
    def read(self, after: str | None, count: int) -> list[Entry]:
        """Up to `count` entries after the position (from the start when None), oldest first."""

    @abstractmethod
    def published(self) -> int:
        """How many events were ever published."""

    @abstractmethod
    def checkpoint(self, consumer: str) -> Checkpoint: ...

    @abstractmethod
    def commit(self, consumer: str, checkpoint: Checkpoint, set_aside: list[dict[str, Any]],
               produced: list[dict[str, Any]]) -> None:
        """Atomically: the new checkpoint, the events set aside, the rows produced."""

    @abstractmethod
    def set_aside(self) -> list[dict[str, Any]]:
        """Every event set aside: position, payload, reason, detail."""

    @abstractmethod
    def produced(self, view: str, start: str, end: str) -> list[dict[str, Any]]:
        """The rows the consumer produced for the view with event_timestamp in [start, end) (ISO,
        UTC), oldest commit first."""

    def close(self) -> None:
        pass


@contextmanager
def _as_os_error(path: Path):
    """SQLite's errors for a full or read-only disk as the OSError the command line reports
    (naming the file) instead of a traceback."""
    try:
        yield
    except sqlite3.OperationalError as err:
        text = str(err).lower()
        if "full" in text:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from err
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            raise OSError(errno.EROFS, f"{os.strerror(errno.EROFS)} ({err})", str(path)) from err
        raise


class SqliteTopic(Topic):
    def __init__(self, path: Path):
        self.path = path
        self.where = str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _as_os_error(path):
            self._open()

    def _open(self) -> None:
        path = self.path
        self._con = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._con.execute("pragma journal_mode=wal")
        self._con.execute("pragma synchronous=normal")
        self._con.executescript("""
            create table if not exists events (
                position integer primary key autoincrement, payload text not null, published_at real not null);
            create table if not exists checkpoints (
                consumer text primary key, position integer, consumed integer not null,
                state text not null, committed_at real not null);
            create table if not exists set_aside (
                position integer not null, consumer text not null, payload text not null,
                reason text not null, detail text not null, primary key (consumer, position));
            create table if not exists produced (
                view text not null, event_timestamp text not null, row text not null, position integer not null);
            create index if not exists produced_by_time on produced (view, event_timestamp);
        """)

    def publish(self, payloads: list[str]) -> None:
        now = time.time()
        with _as_os_error(self.path), self._con:
            self._con.execute("begin immediate")
            self._con.executemany("insert into events (payload, published_at) values (?, ?)",
                                  [(p, now) for p in payloads])

    def read(self, after: str | None, count: int) -> list[Entry]:
        rows = self._con.execute("select position, payload, published_at from events where position > ? "
                                 "order by position limit ?", (int(after or 0), count)).fetchall()
        return [Entry(str(p), payload, at) for p, payload, at in rows]

    def published(self) -> int:
        return self._con.execute("select count(*) from events").fetchone()[0]

    def checkpoint(self, consumer: str) -> Checkpoint:
        row = self._con.execute("select position, consumed, state, committed_at from checkpoints "
                                "where consumer = ?", (consumer,)).fetchone()
        if row is None:
            return Checkpoint()
        return Checkpoint(str(row[0]) if row[0] is not None else None, row[1], json.loads(row[2]), row[3])

    def commit(self, consumer: str, checkpoint: Checkpoint, set_aside: list[dict[str, Any]],
               produced: list[dict[str, Any]]) -> None:
        with _as_os_error(self.path), self._con:
            self._con.execute("begin immediate")
            self._con.execute(
                "insert into checkpoints values (?, ?, ?, ?, ?) on conflict (consumer) do update set "
                "position = excluded.position, consumed = excluded.consumed, state = excluded.state, "
                "committed_at = excluded.committed_at",
                (consumer, int(checkpoint.position) if checkpoint.position else None, checkpoint.consumed,
                 json.dumps(checkpoint.state), checkpoint.committed_at))
            self._con.executemany(
                "insert or replace into set_aside values (?, ?, ?, ?, ?)",
                [(int(b["position"]), consumer, b["payload"], b["reason"], b["detail"]) for b in set_aside])
            self._con.executemany(
                "insert into produced values (?, ?, ?, ?)",
                [(r["view"], r["row"]["event_timestamp"], json.dumps(r["row"]), int(r["position"]))
                 for r in produced])

    def set_aside(self) -> list[dict[str, Any]]:
        rows = self._con.execute("select position, payload, reason, detail from set_aside order by position")
        return [{"position": str(p), "payload": payload, "reason": r, "detail": d} for p, payload, r, d in rows]

    def produced(self, view: str, start: str, end: str) -> list[dict[str, Any]]:
        rows = self._con.execute("select row from produced where view = ? and event_timestamp >= ? and "
                                 "event_timestamp < ? order by position, rowid", (view, start, end))
        return [json.loads(row) for (row,) in rows]

    def close(self) -> None:
        self._con.close()


class RedisTopic(Topic):
    """A Redis Stream; the consumer's commit is one MULTI/EXEC transaction."""

    # Produced rows kept for the skew check (weeks of a busy stream's rows).
    PRODUCED_MAXLEN = 1_000_000

    def __init__(self, url: str, prefix: str | None = None):
        import redis

        prefix = prefix or f"mlplatform:{topic_name()}"
        self._redis = redis.Redis.from_url(url, decode_responses=True)
        self.where = f"Redis stream {prefix} at {url.split('@')[-1]}"
        self.key = prefix  # the event stream; what the consumer commits lives under `<prefix>:…`

    def _k(self, suffix: str) -> str:
        return f"{self.key}:{suffix}"

    def publish(self, payloads: list[str]) -> None:
        pipe = self._redis.pipeline(transaction=True)
        for payload in payloads:
            pipe.xadd(self.key, {"payload": payload})
        pipe.execute()

    def read(self, after: str | None, count: int) -> list[Entry]:
        start = f"({after}" if after else "-"
        return [Entry(pos, fields["payload"], int(pos.split("-")[0]) / 1000)
                for pos, fields in self._redis.xrange(self.key, min=start, max="+", count=count)]

    def published(self) -> int:
        # Entries are never trimmed from the event stream, so its length is every event published.
        return self._redis.xlen(self.key)

    def checkpoint(self, consumer: str) -> Checkpoint:
        data = self._redis.get(self._k(f"checkpoint:{consumer}"))
        if not data:
            return Checkpoint()
        return Checkpoint(**json.loads(data))

    def commit(self, consumer: str, checkpoint: Checkpoint, set_aside: list[dict[str, Any]],
               produced: list[dict[str, Any]]) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self._k(f"checkpoint:{consumer}"), json.dumps(checkpoint.__dict__))
        for bad in set_aside:
            pipe.hset(self._k("set_aside"), bad["position"], json.dumps(bad))
        for row in produced:
            pipe.xadd(self._k("produced"), {"view": row["view"], "row": json.dumps(row["row"])},
                      maxlen=self.PRODUCED_MAXLEN, approximate=True)
        pipe.execute()

    def set_aside(self) -> list[dict[str, Any]]:
        entries = [json.loads(v) for v in self._redis.hvals(self._k("set_aside"))]
        return sorted(entries, key=lambda b: tuple(int(x) for x in b["position"].split("-")))

    def produced(self, view: str, start: str, end: str) -> list[dict[str, Any]]:
        rows = []
        for _, fields in self._redis.xrange(self._k("produced"), count=None):
            if fields["view"] != view:
                continue
            row = json.loads(fields["row"])
            if start <= row["event_timestamp"] < end:
                rows.append(row)
        return rows

    def close(self) -> None:
        self._redis.close()


def open_topic(paths, profile=None) -> Topic:
    """The profile's topic: Redis Streams in production, the SQLite log otherwise."""
    from mlplatform.profile import current

    profile = profile or current()
    if profile.production:
        return RedisTopic(profile.redis_url)
    return SqliteTopic(topic_file(paths))
