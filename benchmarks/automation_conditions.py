"""Could Dagster's declarative automation replace the downstream sensor? A measurement.

    python benchmarks/automation_conditions.py COPY_OF_A_BUILT_STATE_DIR [--corrected DAY] [--latest-window]

On a copy of a state directory whose landed days are built (it writes to it), the downstream graph
(the daily dbt models, the online store, drift, scoring) gets `AutomationCondition.eager()` (or,
without `--latest-window`, eager without its `in_latest_time_window` part), and Dagster's own
evaluator (`dg.evaluate_automation_conditions`) says which partitions it would request: once as it
is, once after the raw stage stores the next three landed days (`mlplatform replay --days 3` first),
and, with `--corrected`, once after an earlier day's raw data is stored again. docs/automation.md
has the figures and the decision.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("home")
    parser.add_argument("--corrected", help="an earlier, already built day whose raw data is stored again")
    parser.add_argument("--latest-window", action="store_true", help="eager() as Dagster ships it")
    args = parser.parse_args()
    os.environ["MLPLATFORM_HOME"] = args.home
    os.environ["DAGSTER_HOME"] = f"{args.home}/dagster"

    import dagster as dg

    from mlplatform.automation.jobs import DAILY_MODELS, DRIFT, ONLINE, SCORING
    from mlplatform.definitions import defs
    from mlplatform.ingest.landing import LandingZone
    from mlplatform.ingest.lake import Lake
    from mlplatform.resources import PlatformState, RawIngestPolicy
    from mlplatform.state import StatePaths

    condition = dg.AutomationCondition.eager()
    if not args.latest_window:  # eager() only ever looks at the newest partition of a time window
        condition = condition.without(dg.AutomationCondition.in_latest_time_window())
    downstream = dg.AssetSelection.assets(*[dg.AssetKey(k) for k in DAILY_MODELS + ONLINE + DRIFT + SCORING])
    declarative = defs.map_resolved_asset_specs(
        func=lambda spec: spec.replace_attributes(automation_condition=condition), selection=downstream)
    keys = sorted(declarative.resolve_asset_graph().get_all_asset_keys(), key=lambda k: k.to_user_string())
    raw = [defs.get_assets_def(f"raw_{t}") for t in ("flights", "weather")]
    resources = {"state": PlatformState(home=args.home), "raw_ingest": RawIngestPolicy()}

    def evaluate(instance, cursor, label: str):
        started = time.perf_counter()
        result = dg.evaluate_automation_conditions(defs=declarative, instance=instance, cursor=cursor)
        print(f"{label}: {result.total_requested} partition(s) requested in {time.perf_counter() - started:.1f} s")
        for key in keys:
            if result.get_num_requested(key):
                print(f"  {key.to_user_string():28} {sorted(result.get_requested_partitions(key))}")
        return result

    paths = StatePaths.resolve(args.home)
    stored, landed = set(Lake(paths.lake).days("flights")), LandingZone(paths.landing, paths.quarantine).days("flights")
    new_days = [d for d in landed if d not in stored]
    with dg.DagsterInstance.get() as instance:
        first = evaluate(instance, None, "as it is")
        for day in new_days:  # what the landing sensor's runs do
            assert dg.materialize(raw, partition_key=day, instance=instance, resources=resources).success
        second = evaluate(instance, first.cursor, f"after {len(new_days)} new day(s) stored ({', '.join(new_days)})")
        if args.corrected:
            assert dg.materialize(raw, partition_key=args.corrected, instance=instance, resources=resources).success
            evaluate(instance, second.cursor, f"after {args.corrected} stored again")


if __name__ == "__main__":
    main()
