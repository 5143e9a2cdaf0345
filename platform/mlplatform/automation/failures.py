"""The run-failure sensor: every failed run, whatever started it, recorded in one place.

`$MLPLATFORM_HOME/run_failures.jsonl` gets the run, its job, what triggered it (the sensors' tags),
the partition or range, and the error; `mlplatform status` shows the latest. A failed run's MLflow
run, if a crash left it RUNNING, is ended as FAILED here too. The failure raises an alert
(`alerts.py`): once per failing job, until a run of that job succeeds.
"""

import json
from datetime import datetime, timezone

import dagster as dg

from mlplatform.automation.records import FAILURES_LOG, read_jsonl
from mlplatform.automation.settings import sensor_status
from mlplatform.state import StatePaths
from mlplatform.model.tracking import store_exists as tracking_store_exists


def failures(paths: StatePaths) -> list[dict]:
    return read_jsonl(paths.home / FAILURES_LOG)


def record_failure(paths: StatePaths, run: dg.DagsterRun, error: str, failed_steps: dict[str, str]) -> dict:
    """Append a failed run to the failure log; a run's MLflow run left RUNNING is ended FAILED."""
    from mlplatform.automation.jobs import run_target  # the jobs load dbt: not for `status`, which reads the log
    from mlplatform.model.tracking import end_runs_of

    tags = run.tags
    entry = {
        "at": datetime.now(timezone.utc).isoformat(),
        "run_id": run.run_id,
        "job": run.job_name,
        "trigger": tags.get("mlplatform/trigger", tags.get("dagster/sensor_name", "manual")),
        "partition": run_target(tags),
        "error": error,
        "failed_steps": failed_steps,
    }
    if tracking_store_exists(paths):
        entry["mlflow_runs_ended"] = end_runs_of(paths, run.run_id)
    with open(paths.ensure().home / FAILURES_LOG, "a") as log:
        log.write(json.dumps(entry) + "\n")
    return entry


def step_error(event: dg.DagsterEvent) -> str:
    """A failed step's own message: its `Failure` description, else the error."""
    data = event.step_failure_data
    if data.user_failure_data and data.user_failure_data.description:
        return data.user_failure_data.description
    return data.error.message.strip() if data.error else "unknown error"


@dg.run_failure_sensor(
    name="run_failure_sensor",
    minimum_interval_seconds=5,
    default_status=sensor_status(),
    description=f"Records every failed run in $MLPLATFORM_HOME/{FAILURES_LOG} and alerts once per failing job "
                "(MLPLATFORM_ALERT_WEBHOOK_URL, and alerts.jsonl) until a run of that job succeeds.",
)
def run_failure_sensor(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    paths = StatePaths.resolve(None)
    entry = record_failure(paths, run, context.failure_event.message or "",
                           {e.step_key: step_error(e) for e in context.get_step_failure_events()})
    context.log.warning(f"run {run.run_id[:8]} ({run.job_name}) failed: {entry['error']}")
    try:
        alert_failed_run(paths, context.instance, entry)
    except Exception:  # the failure is recorded above; a broken alert must not fail the sensor's tick
        context.log.exception(f"could not raise the alert for run {run.run_id[:8]}")


def alert_failed_run(paths: StatePaths, instance: dg.DagsterInstance, entry: dict) -> bool:
    """One alert per failing job: another failure of the same job sends nothing until it succeeds."""
    from mlplatform.automation.alerts import Alert, job_succeeded_since, notifier

    steps = "; ".join(f"{step}: {error}" for step, error in entry["failed_steps"].items()) or entry["error"]
    alert = Alert(key=f"run_failed:{entry['job']}", title=f"{entry['job']} failed",
                  text=f"run {entry['run_id']} ({entry['trigger']}, {entry['partition'] or 'no partition'}): {steps}",
                  details={"run_id": entry["run_id"], "job": entry["job"], "partition": entry["partition"]})
    return notifier(paths).raise_alert(alert, cleared=job_succeeded_since(instance, entry["job"]))
