"""Helpers for tests: run the real Dagster definitions against a test instance."""

from __future__ import annotations

import dagster as dg

from mlplatform.resources import PlatformState, RawIngestPolicy
from mlplatform.state import StatePaths


def materialize_raw(instance: dg.DagsterInstance, paths: StatePaths, table: str, day: str | None = None,
                    max_reject_share: float = 0.05) -> dg.ExecuteInProcessResult:
    """Materialize `raw_<table>` (for `day`) with the code location's own asset definition."""
    from mlplatform.definitions import defs

    asset = defs.get_assets_def(f"raw_{table}")
    return dg.materialize(
        [asset], partition_key=day, instance=instance, raise_on_error=False,
        resources={"state": PlatformState(home=str(paths.home)),
                   "raw_ingest": RawIngestPolicy(max_reject_share=max_reject_share)},
    )


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failures, "expected a failed step"
    return str(failures[0].step_failure_data.error.message) + str(
        failures[0].step_failure_data.user_failure_data.description
        if failures[0].step_failure_data.user_failure_data else "")
