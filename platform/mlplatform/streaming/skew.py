"""The stream against dbt: for a built day, every feature row the consumer produced must equal the
row dbt computed from the end-of-day file for the same entity and moment (the streaming counterpart
of the online/offline skew check). Only moments the consumer has reached are compared: a consumer
behind is the lag check's business, not a skew."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pyarrow.parquet as pq

from mlplatform.ingest.lake import Lake
from mlplatform.streaming.events import StreamView, iso_utc, local_midnight
from mlplatform.streaming.topic import Topic

TOLERANCE = 1e-9


@dataclass
class StreamSkew:
    compared: int = 0        # rows present on both sides
    not_streamed: int = 0    # dbt rows, up to the consumer's watermark, the stream never produced
    not_in_dbt: int = 0      # stream rows dbt does not have
    streamed: int = 0        # rows the stream produced for the day (0: the day was not streamed)
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.mismatches and not self.not_streamed and not self.not_in_dbt


def _missing(value: Any) -> bool:
    return value is None or value != value  # NaN


def _equal(dbt_value: Any, streamed: Any) -> bool:
    """Equal within TOLERANCE; a value on one side only (the stream had no schedule for the day,
    say) is a difference."""
    if _missing(dbt_value) or _missing(streamed):
        return _missing(dbt_value) and _missing(streamed)
    return abs(float(dbt_value) - float(streamed)) <= TOLERANCE * max(1.0, abs(float(dbt_value)))


def compare_stream_with_dbt(topic: Topic, exports: Lake, day: date, watermark: str | None,
                            views: tuple[StreamView, ...] | None = None, tz: str | None = None) -> StreamSkew:
    """The stream's rows of the local day `day` against dbt's, for each view the stream feeds (by
    default the enabled use case's, in its calendar's time zone)."""
    if views is None or tz is None:
        from mlplatform.streaming.consumer import active_stream
        from mlplatform.usecases import active

        views, tz = views or active_stream().views, tz or active().calendar.timezone
    report = StreamSkew()
    start, end = (iso_utc(local_midnight(d, tz)) for d in (day, day + timedelta(days=1)))
    if watermark is None:
        return report
    for stream_view in views:
        view, model, key, features = stream_view.view, stream_view.model, stream_view.key, stream_view.features
        path = exports.path(model, day.isoformat())
        if not path.exists():
            continue
        built = pq.read_table(path).to_pandas()
        built_rows = {(k, t): row for k, t, row in zip(built[key], map(iso_utc, built["event_timestamp"]),
                                                      built[list(features)].to_dict("records"))
                      if t <= watermark}
        # Nothing produced lies past the watermark: it is the newest event the consumer took.
        streamed = {(r[key], r["event_timestamp"]): r for r in topic.produced(view, start, end)}
        report.streamed += len(streamed)
        for k in built_rows.keys() - streamed.keys():
            report.not_streamed += 1
            if len(report.mismatches) < 20:
                report.mismatches.append({"view": view, key: k[0], "at": k[1], "problem": "not streamed"})
        for k in streamed.keys() - built_rows.keys():
            report.not_in_dbt += 1
            if len(report.mismatches) < 20:
                report.mismatches.append({"view": view, key: k[0], "at": k[1], "problem": "not in dbt"})
        for k in built_rows.keys() & streamed.keys():
            report.compared += 1
            for f in features:
                a, b = built_rows[k][f], streamed[k].get(f)
                if not _equal(a, b):
                    report.mismatches.append({"view": view, key: k[0], "at": k[1], "feature": f,
                                              "dbt": a, "stream": b})
    if report.streamed == 0:  # files landed without their events (by hand, before the stream existed)
        return StreamSkew()
    return report
