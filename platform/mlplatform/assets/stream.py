"""Feature stage, streaming half: what Dagster sees of the use case's same-day stream.

The consumer runs as its own long-lived process (`mlplatform consume`, started by `make run`):
a run per micro-batch would pay a process start and a code-location load each time (seconds) where a
poll takes milliseconds. This asset reports on it once per built day: how far behind it is, how
fresh its last commit is, what it set aside; its checks say whether it keeps up and whether what it
pushed equals what dbt computed for the same entities and moments.
"""

from datetime import date

import dagster as dg

from mlplatform.assets.features import SAME_DAY_FEATURE_TABLES as SAME_DAY_TABLES
from mlplatform.assets.ui import table
from mlplatform.resources import PlatformState, StreamPolicy
from mlplatform.partitions import daily_partitions
from mlplatform.usecases import named

GROUP = "features"


def _status(state: PlatformState) -> dict:
    from mlplatform.streaming.consumer import stream_status

    return stream_status(state.paths)


@dg.asset(
    name=named("same_day_stream"),
    group_name=GROUP,
    kinds={"python", "redis", "sqlite"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),  # a range is one run: each handles several days
    deps=[named("feature_definitions"), *SAME_DAY_TABLES],
    description="The same-day stream as of the day's build: events published and consumed, the "
                "consumer's lag and last commit, events set aside by reason. The consumer itself "
                "(`mlplatform consume`) pushes same-day features to Feast's online store as events come.",
)
def same_day_stream(context: dg.AssetExecutionContext, state: PlatformState) -> dg.MaterializeResult:
    status = _status(state)
    context.log.info(f"same-day stream: {status}")
    return dg.MaterializeResult(metadata={
        **{k: v for k, v in status.items() if k != "set_aside_by_reason"},
        "seconds_since_commit": status["seconds_since_commit"] if status["seconds_since_commit"] is not None else -1,
        "latest_event": status["latest_event"] or "none",
        "set_aside_by_reason": table({"reason": reason, "events": n}
                                     for reason, n in sorted(status["set_aside_by_reason"].items())),
    })


@dg.asset_check(asset=same_day_stream,
                description="The consumer keeps up: nothing waits in the topic, or its last commit is "
                            "recent (stream_policy.max_seconds_behind).")
def stream_keeps_up(state: PlatformState, stream_policy: StreamPolicy) -> dg.AssetCheckResult:
    status = _status(state)
    age = status["seconds_since_commit"]
    waiting = status["lag_events"]
    passed = waiting == 0 or (age is not None and age <= stream_policy.max_seconds_behind)
    return dg.AssetCheckResult(
        passed=passed, severity=dg.AssetCheckSeverity.WARN,
        description=None if passed else f"{waiting} event(s) wait in the topic and the consumer last committed "
                                        f"{'never' if age is None else f'{age} s ago'}: is `mlplatform consume` running?",
        metadata={"lag_events": waiting, "seconds_since_commit": age if age is not None else -1})


@dg.asset_check(asset=same_day_stream,
                description="For each built day, every same-day feature row the stream produced equals "
                            "dbt's from the end-of-day file, for the same entity and moment.")
def stream_matches_dbt(context: dg.AssetCheckExecutionContext, state: PlatformState) -> dg.AssetCheckResult:
    from mlplatform.streaming.consumer import CONSUMER
    from mlplatform.streaming.skew import compare_stream_with_dbt
    from mlplatform.streaming.topic import open_topic

    days = sorted(state.exports.days(SAME_DAY_TABLES[0]))[-1:]
    topic = open_topic(state.paths)
    try:
        watermark = (topic.checkpoint(CONSUMER).state or {}).get("watermark")
        reports = {d: compare_stream_with_dbt(topic, state.exports, date.fromisoformat(d), watermark) for d in days}
    finally:
        topic.close()
    mismatches = [m for r in reports.values() for m in r.mismatches]
    return dg.AssetCheckResult(passed=all(r.passed for r in reports.values()), metadata={
        "days": ", ".join(days) or "none built",
        "rows_streamed": sum(r.streamed for r in reports.values()),
        "rows_compared": sum(r.compared for r in reports.values()),
        "not_streamed": sum(r.not_streamed for r in reports.values()),
        "not_in_dbt": sum(r.not_in_dbt for r in reports.values()),
        "mismatches": len(mismatches),
        "examples": table({k: str(v) for k, v in m.items()} for m in mismatches[:5]),
    })


stream_assets = [same_day_stream]
stream_checks = [stream_keeps_up, stream_matches_dbt]
