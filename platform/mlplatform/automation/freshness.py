"""Freshness: how old what users depend on may get, as Dagster freshness policies, and one alert when
one is overdue.

The policies are Dagster's own (`FreshnessPolicy.time_window`): the daemon's freshness loop
evaluates them (`freshness: enabled` in the instance configuration `mlplatform prepare` writes) and
the UI shows each asset's state (fresh, warning, overdue) on its page and in the lineage graph. The
windows, from the environment:

| what | assets | overdue after (warns 2 h or 7 days earlier) | setting |
|---|---|---|---|
| a day's data | the daily raw tables (`raw_<table>`), `online_features`, `batch_predictions`, `same_day_stream` | 26 hours | `MLPLATFORM_FRESHNESS_DAILY_HOURS` |
| the champions | `deployed_model`, `live_deployed_model` | 35 days | `MLPLATFORM_FRESHNESS_CHAMPION_DAYS` |

A day lands once a day, so a day's assets older than a day and two hours mean the feed or the
pipeline stopped; a champion older than five weeks means retraining stopped (the retrain policy
retrains every `min_new_labeled_rows` labeled rows).

`freshness_sensor` reads the states the daemon recorded and raises `freshness_overdue:<asset>`
through the notifier (`alerts.py`) once per asset, cleared when the asset is fresh again.
"""

from __future__ import annotations

import os
from datetime import timedelta

import dagster as dg

from mlplatform.automation.settings import sensor_status
from mlplatform.usecases import active, named

DAILY = (*(f"raw_{t}" for t in active().daily_tables), named("online_features"), named("batch_predictions"),
         *([named("same_day_stream")] if active().features.same_day_service else []))
CHAMPIONS = tuple(named(f"{line.asset_prefix}deployed_model") for line in active().model.lines)
DAILY_ENV, CHAMPION_ENV = "MLPLATFORM_FRESHNESS_DAILY_HOURS", "MLPLATFORM_FRESHNESS_CHAMPION_DAYS"


def _window(env: str, default: float, unit: timedelta) -> timedelta:
    raw = os.environ.get(env, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{env} must be a number, not {raw!r}") from None
    if value * unit < timedelta(minutes=2):
        raise ValueError(f"{env}={raw} is shorter than Dagster's shortest freshness window (a minute) plus a warning")
    return value * unit


def policies() -> dict[dg.AssetKey, dg.FreshnessPolicy]:
    """Each watched asset's policy, with the windows configured in the environment."""
    daily, champion = _window(DAILY_ENV, 26, timedelta(hours=1)), _window(CHAMPION_ENV, 35, timedelta(days=1))
    return {
        **{dg.AssetKey(name): dg.FreshnessPolicy.time_window(fail_window=daily,
                                                             warn_window=daily - min(timedelta(hours=2), daily / 2))
           for name in DAILY},
        **{dg.AssetKey(name): dg.FreshnessPolicy.time_window(fail_window=champion,
                                                             warn_window=champion - min(timedelta(days=7), champion / 2))
           for name in CHAMPIONS},
    }


def with_freshness(assets: list) -> list:
    """The assets, the watched ones with their freshness policy."""
    wanted = policies()
    return list(dg.map_asset_specs(
        lambda spec: spec.replace_attributes(freshness_policy=wanted[spec.key]) if spec.key in wanted else spec,
        assets))


def alert_overdue(instance: dg.DagsterInstance, paths) -> dict[str, str]:
    """Alert for each watched asset the daemon found overdue, clear the others; their states by name."""
    from dagster._core.definitions.freshness import FreshnessState

    from mlplatform.automation.alerts import Alert, notifier

    records = instance.get_freshness_state_records(list(policies()))
    states = {}
    for key, record in records.items():
        name, state = key.to_user_string(), record.freshness_state
        states[name] = state.value
        condition = f"freshness_overdue:{name}"
        if state == FreshnessState.FAIL:
            notifier(paths).raise_alert(Alert(
                key=condition, title=f"{name} is overdue",
                text=f"{name} was last updated before its freshness window (since "
                     f"{record.updated_at:%Y-%m-%d %H:%M} UTC by the daemon's evaluation): is the feed landing "
                     "days, and are the sensors running?",
                details={"asset": name, "freshness_state": state.value}))
        elif state in (FreshnessState.PASS, FreshnessState.WARN):
            notifier(paths).clear(condition)
    return states


@dg.sensor(
    name=named("freshness_sensor"),
    minimum_interval_seconds=60,
    default_status=sensor_status(),
    description="Alerts (MLPLATFORM_ALERT_WEBHOOK_URL, and alerts.jsonl) once for each watched asset that is "
                "overdue by its freshness policy, as the daemon evaluated it; cleared once it is fresh again. "
                "Also clears a failed job's alert once the job has succeeded.",
)
def freshness_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    from mlplatform.state import StatePaths

    from mlplatform.automation.alerts import clear_jobs_that_succeeded

    paths = StatePaths.resolve()
    states = alert_overdue(context.instance, paths)
    overdue = sorted(name for name, state in states.items() if state == "FAIL")
    # A failed job's alert clears once it succeeds, whoever ran it: the run-failure sensor sees
    # failures only, so the clearing happens on this regular tick.
    recovered = clear_jobs_that_succeeded(paths, context.instance)
    return dg.SkipReason((f"overdue: {', '.join(overdue)}" if overdue else
                          f"{len(states)} watched asset(s) evaluated, none overdue")
                         + (f"; failed job(s) succeeded since: {', '.join(recovered)}" if recovered else ""))
