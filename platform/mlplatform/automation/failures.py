"""Every failed run, whatever started it, recorded in one place and alerted once.

`$MLPLATFORM_HOME/run_failures.jsonl` gets the run, its job, what triggered it (the sensors' tags),
the partition or range, and the error; `mlplatform status` shows the latest. A failed run's MLflow
run, if a crash left it RUNNING, is ended as FAILED here too. The failure raises an alert
(`alerts.py`): once per failing job, until a run of that job succeeds.

Three paths report a failure, each through `report_failure`: the run-failure sensor (runs of the
code location under the daemon), `mlplatform pipeline` (its own runs, which no sensor watches), and
the recovery of runs whose process died (`recovery.py`, from either). A run is recorded once,
however many of them see it.
"""

import json
import re
from datetime import datetime, timezone

import dagster as dg

from mlplatform.automation.records import FAILURES_LOG, read_jsonl
from mlplatform.automation.settings import sensor_status
from mlplatform.state import StatePaths
from mlplatform.usecases import named
from mlplatform.model.tracking import store_exists as tracking_store_exists


def failures(paths: StatePaths) -> list[dict]:
    return read_jsonl(paths.home / FAILURES_LOG)


def record_failure(paths: StatePaths, run: dg.DagsterRun, error: str, failed_steps: dict[str, str],
                   lost_services: list[str] = ()) -> dict | None:
    """Append a failed run to the failure log, or None where it is there already; a run's MLflow run
    left RUNNING is ended FAILED."""
    from mlplatform.automation.jobs import run_target  # the jobs load dbt: not for `status`, which reads the log
    from mlplatform.model.tracking import end_runs_of

    if any(entry.get("run_id") == run.run_id for entry in failures(paths)):
        return None
    tags = run.tags
    entry = {
        "at": datetime.now(timezone.utc).isoformat(),
        "run_id": run.run_id,
        "job": run.job_name,
        "trigger": tags.get("mlplatform/trigger", tags.get("dagster/sensor_name", "manual")),
        "partition": run_target(tags),
        "error": error,
        "failed_steps": failed_steps,
        "lost_services": list(lost_services),
    }
    if tracking_store_exists(paths):
        try:
            entry["mlflow_runs_ended"] = end_runs_of(paths, run.run_id)
        except Exception as err:  # noqa: BLE001 - a store that went away must not lose the record
            entry["mlflow_runs_ended"] = f"not checked: the tracking store did not answer ({type(err).__name__})"
    with open(paths.ensure().home / FAILURES_LOG, "a") as log:
        log.write(json.dumps(entry) + "\n")
    return entry


def lost_during_the_run(failed_steps: dict[str, str], error: str, named: list[str]) -> list[str]:
    """Each service a failed step's error says was lost, and that `named` (the services that cannot
    be reached now) does not name already: the run-failure sensor reports a run some seconds after
    it failed, and a server may answer again by then."""
    from mlplatform.profile import lost_service_in

    found = []
    for where, text in [*failed_steps.items(), ("the run", error)]:
        setting = lost_service_in(text or "")
        if setting and not any(message.startswith(setting) for message in [*named, *found]):
            first = (text.strip().splitlines() or [""])[0]
            found.append(f"{setting}: its server stopped answering during the run ({where}: {first}); "
                         "rerun once it answers (`mlplatform pipeline`, or the sensors' next tick)")
    return found


def lost_services() -> list[str]:
    """Each production service that cannot be reached now, as a message naming its setting: a run
    whose Redis or PostgreSQL went away fails with the client's bare error, or with none at all
    where the executor lost its steps."""
    from mlplatform.profile import ProfileError, current

    try:
        return current().unreachable()
    except ProfileError:  # a wrong profile fails every command before a run starts, naming it
        return []


def run_error(events: list[dg.DagsterEvent]) -> str:
    """Why a run failed, from its events: the first failed step and its own message, else the
    executor's error (a step it could not hand out or hear back from), else the run's failure."""
    failed = [e for e in events if e.is_step_failure]
    if failed:
        return f"{failed[0].step_key}: {step_error(failed[0])}"
    for event in events:
        data = event.event_specific_data
        error = getattr(data, "error", None)
        if error is not None and getattr(error, "message", None):
            lines = [line.strip() for line in error.message.strip().splitlines() if line.strip()]
            # An executor's error lists its steps' own as `[step]: Type: message` (stack traces after).
            in_step = next((line for line in lines if re.match(r"^\[[\w.\[\]-]+\]: ", line)), None)
            return re.sub(r"^\[([\w.\[\]-]+)\]: ", r"\1: ", in_step) if in_step else lines[0]
    return next((e.message for e in events if e.event_type == dg.DagsterEventType.RUN_FAILURE and e.message), "")


def step_error(event: dg.DagsterEvent) -> str:
    """A failed step's own message: its `Failure` description, else the error."""
    data = event.step_failure_data
    if data.user_failure_data and data.user_failure_data.description:
        return _TERMINAL_COLOURS.sub("", data.user_failure_data.description)
    return _own_message(data.error) if data.error else "unknown error"


def _own_message(error) -> str:
    """The error's message; where Dagster wrapped a step's exception ("Error occurred while
    executing op ..."), the exception's own, `Type: message`."""
    while error.cause is not None and error.cls_name in ("DagsterExecutionStepExecutionError",
                                                         "DagsterUserCodeExecutionError"):
        error = error.cause
    return _TERMINAL_COLOURS.sub("", error.message).strip()


# dbt colours the errors it logs: records, alerts and the pipeline's lines carry the text alone.
_TERMINAL_COLOURS = re.compile(r"\x1b\[[0-9;]*m")


@dg.run_failure_sensor(
    name=named("run_failure_sensor"),
    minimum_interval_seconds=5,
    default_status=sensor_status(),
    description=f"Records every failed run in $MLPLATFORM_HOME/{FAILURES_LOG} and alerts once per failing job "
                "(MLPLATFORM_ALERT_WEBHOOK_URL, and alerts.jsonl) until a run of that job succeeds.",
)
def run_failure_sensor(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    entry = report_failure(StatePaths.resolve(None), context.instance, run, context.failure_event.message or "",
                           {e.step_key: step_error(e) for e in context.get_step_failure_events()}, context.log)
    if entry is not None:
        context.log.warning(f"run {run.run_id[:8]} ({run.job_name}) failed: {entry['error']}")


def report_failure(paths: StatePaths, instance: dg.DagsterInstance, run: dg.DagsterRun, error: str,
                   failed_steps: dict[str, str], log=None) -> dict | None:
    """Record the failed run and alert once for its job; None where it was reported already. The
    production services that cannot be reached now lead the error (and the alert), each naming its
    setting, and are listed as `lost_services`."""
    import logging

    lost = lost_services()
    lost += lost_during_the_run(failed_steps, error, lost)
    entry = record_failure(paths, run, "; ".join([*lost, error] if error else lost), failed_steps, lost)
    if entry is None:
        return None
    try:
        alert_failed_run(paths, instance, entry)
    except Exception:  # the failure is recorded above; a broken alert must not fail what reports it
        (log or logging.getLogger(__name__)).exception(f"could not raise the alert for run {run.run_id[:8]}")
    return entry


def alert_failed_run(paths: StatePaths, instance: dg.DagsterInstance, entry: dict) -> bool:
    """One alert per failing job: another failure of the same job sends nothing until it succeeds."""
    from mlplatform.automation.alerts import RUN_FAILED, Alert, job_succeeded_since, notifier

    steps = "; ".join([*entry.get("lost_services", []),
                       *(f"{step}: {error}" for step, error in entry["failed_steps"].items())]) or entry["error"]
    alert = Alert(key=f"{RUN_FAILED}{entry['job']}", title=f"{entry['job']} failed",
                  text=f"run {entry['run_id']} ({entry['trigger']}, {entry['partition'] or 'no partition'}): {steps}",
                  details={"run_id": entry["run_id"], "job": entry["job"], "partition": entry["partition"]})
    return notifier(paths).raise_alert(alert, cleared=job_succeeded_since(instance, entry["job"]))
