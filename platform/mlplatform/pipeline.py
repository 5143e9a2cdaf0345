"""`mlplatform pipeline`: in one process, what the sensors do over time.

It ticks the sensors' own planners against the Dagster instance of the state directory and runs
what they request, in order, until none requests anything: landed files into the lake, the
reference and daily refreshes (consecutive days as one range), the retrain decision and, when it
says so, training, the gate and promotion; then the newest day is scored by the new champion. The
runs are recorded in the instance like the sensors' runs, so `dagster dev` shows them afterwards.
It keeps no cursor of its own: what is left to do is read from the lake and the instance, so a rerun
after a crash or a failure redoes exactly the work that is missing.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from mlplatform.profile import ServiceLost
from mlplatform.state import StatePaths

if TYPE_CHECKING:
    import dagster as dg

    from mlplatform.resources import PlatformState

PIPELINE_LOCK = "pipeline.lock"
LOG_LEVEL_ENV = "MLPLATFORM_PIPELINE_LOG_LEVEL"
TOOLS_LOG = "pipeline.log"


@dataclass
class PipelineRun:
    job: str
    target: str
    success: bool
    seconds: float
    error: str = ""


@dataclass
class PipelineResult:
    runs: list[PipelineRun] = field(default_factory=list)
    retrain_decision: str = ""
    champion_version: int | None = None

    @property
    def failed(self) -> list[PipelineRun]:
        return [r for r in self.runs if not r.success]


def _error(result) -> str:
    from mlplatform.automation.failures import run_error

    return run_error(result.all_events)


def load_landed_files(instance: "dg.DagsterInstance", state: "PlatformState",
                      execute: Callable[..., bool]) -> list[str]:
    """Load every landing file the lake does not hold yet (so a file whose run crashed or failed on a
    full disk is loaded by the next rerun): consecutive days in one run; a range that fails (a bad
    file) is loaded again day by day, so the bad day fails alone, with its quarantine reason, and the
    others are stored. Returns the files quarantined for their names."""
    import dagster as dg

    from mlplatform.automation.jobs import RANGE_END, RANGE_START
    from mlplatform.automation.landing import already_stored, plan_landing_runs
    from mlplatform.automation.retries import HEADLESS
    from mlplatform.partitions import days_between

    landing = plan_landing_runs(state.landing, {}, already_stored(instance, state), ranges=True, retry=HEADLESS)
    for request in landing.run_requests:
        if not execute(request) and request.partition_key is None and RANGE_START in request.tags:
            tags = {k: v for k, v in request.tags.items() if k not in (RANGE_START, RANGE_END)}
            for day in days_between(request.tags[RANGE_START], request.tags[RANGE_END]):
                execute(dg.RunRequest(job_name=request.job_name, partition_key=day,
                                      asset_selection=request.asset_selection, tags=tags))
    return landing.quarantined


def run_pipeline(paths: StatePaths, say: Callable[[str], None] = print, retrain: bool = True) -> PipelineResult:
    """Run what the landed data allows; the retrain decision is always made, and acted on if `retrain`.

    One pipeline at a time per state directory (a second waits for the first), and first of all the
    runs a crash left STARTED are failed, their pool slots freed and their MLflow runs ended: then
    planning from the instance redoes their work."""
    from mlplatform.locks import file_lock
    from mlplatform.prepare import prepare

    paths.activate()
    os.environ["DAGSTER_HOME"] = str(paths.dagster_home)
    prepare(paths)  # before the code location loads: it reads the dbt manifest this writes
    with file_lock(paths.home / PIPELINE_LOCK, what="another `mlplatform pipeline` on this state directory",
                   on_wait=say):
        return _run(paths, say, retrain)


def send_unraisable_to_log(paths: StatePaths) -> None:
    """For the rest of the process, errors raised where Python can only print them (Celery's result
    objects retry a lost Redis in `__del__`, up to the interpreter's exit) go to pipeline.log: the
    terminal gets the one message that names the service."""
    import sys

    def to_log(unraisable) -> None:
        import traceback

        with open(paths.home / TOOLS_LOG, "a") as log:
            log.write(f"{unraisable.err_msg or 'Exception ignored in'}: {unraisable.object!r}\n")
            traceback.print_exception(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback, file=log)

    sys.unraisablehook = to_log


def _run(paths: StatePaths, say: Callable[[str], None], retrain: bool) -> PipelineResult:
    import dagster as dg

    from mlplatform.automation.downstream import plan_downstream_run
    from mlplatform.automation.alerts import clear_jobs_that_succeeded
    from mlplatform.automation.failures import report_failure
    from mlplatform.automation.jobs import SCORING, daily_refresh_job, keys, retrain_job, retrain_live_job, run_target
    from mlplatform.automation.recovery import cancel_queued_runs_without_a_daemon, fail_dead_runs, process_tags
    from mlplatform.automation.retrain import decide, gather_facts, record_decision, shadow_decision_request
    from mlplatform.automation.retries import HEADLESS
    from mlplatform.definitions import defs
    from mlplatform.automation.deployments import reconcile_champion
    from mlplatform.resources import PlatformState

    state = PlatformState(home=str(paths.home))
    policy = defs.resources["retrain_policy"]
    outcome = PipelineResult()

    with dg.DagsterInstance.get() as instance:
        for run, message in fail_dead_runs(instance):
            report_failure(paths, instance, run, message, {})
            say(f"recovered: {message}")
        for _, message in cancel_queued_runs_without_a_daemon(instance, paths.home):
            say(f"recovered: {message}")
        for line in reconcile_champion(paths, instance):
            say(f"recovered: {line}")

        def execute(request: dg.RunRequest) -> bool:
            job = defs.resolve_job_def(request.job_name)
            tags = {**request.tags, "mlplatform/pipeline": "headless", **process_tags()}
            target = request.partition_key or run_target(tags) or ""
            started = datetime.now(timezone.utc)
            with _tools_output(paths):
                result = _execute(job, instance, request, tags)
            seconds = (datetime.now(timezone.utc) - started).total_seconds()
            run = PipelineRun(request.job_name, target, result.success, round(seconds, 2), _error(result))
            outcome.runs.append(run)
            lost = []
            if not result.success:  # recorded and alerted here: no sensor watches the pipeline's runs
                entry = report_failure(paths, instance, result.dagster_run, run.error, _step_errors(result))
                lost = entry["lost_services"] if entry else []
                run.error = entry["error"] if entry else run.error
            say(f"{run.job:<18} {run.target:<24} {'ok' if run.success else 'FAILED'} in {run.seconds:.1f} s"
                + (f": {run.error}" if run.error else ""))
            if lost:  # every later run would fail the same way: stop, and say what to do
                raise ServiceLost(f"{'; '.join(lost)}. The {request.job_name} run failed and is recorded "
                                  f"(run {result.dagster_run.run_id[:8]}); nothing was half-written. "
                                  "Run `mlplatform pipeline` again once the service is back: it redoes that run")
            return result.success

        for path in load_landed_files(instance, state, execute):
            say(f"quarantined {path}: its name is not a day of the feed (reason beside it)")

        attempted: dict = {}
        while True:
            plan = plan_downstream_run(instance, attempted, retry=HEADLESS, paths=state.paths)
            attempted = plan.attempted
            if plan.run_request is None:
                break
            execute(plan.run_request)

        now = datetime.now(timezone.utc)
        decision = decide(policy, gather_facts(instance, state, now, defs.resources["model_spec"]))
        outcome.retrain_decision = ("retrain: " if decision.retrain else "no retrain: ") + decision.reason
        say(outcome.retrain_decision + ("" if retrain or not decision.retrain else " (not acted on: --no-retrain)"))
        if retrain and decision.retrain:
            record_decision(state, decision, now)
            trained = execute(dg.RunRequest(job_name=retrain_job.name, tags={
                "mlplatform/trigger": f"retrain:{decision.trigger}",
                "mlplatform/retrain_reason": decision.reason[:1000]}))
            if policy.live_model and retrain_live_job is not None:
                execute(dg.RunRequest(job_name=retrain_live_job.name, tags={
                    "mlplatform/trigger": f"retrain:{decision.trigger}",
                    "mlplatform/retrain_reason": decision.reason[:1000]}))
            from mlplatform.model.deployment import served_champion
            from mlplatform.model.tracking import CHALLENGER, version_for_alias

            challenger = version_for_alias(paths, CHALLENGER)
            if trained and challenger is not None and challenger.tags.get("gate") == "failed":
                # A refusal is a decision: the run succeeded, the champion stays, and why is said.
                say(f"not deployed: version {challenger.version}: {challenger.tags.get('gate_reason', 'refused')}")
            newest = decision.figures.get("newest_day")
            if trained and newest and served_champion(paths) is not None:  # the newest day, scored by the champion
                execute(dg.RunRequest(job_name=daily_refresh_job.name, partition_key=newest, asset_selection=keys(SCORING),
                                      tags={"mlplatform/trigger": "new champion"}))
        elif retrain and (shadow := shadow_decision_request(state, defs.resources["model_spec"])) is not None:
            execute(shadow)
        for job in clear_jobs_that_succeeded(paths, instance):
            say(f"recovered: {job} succeeded again; its failure alert is cleared")

    from mlplatform.model.deployment import served_champion

    champion = served_champion(paths)
    outcome.champion_version = champion["version"] if champion else None
    return outcome


@contextmanager
def _tools_output(paths: StatePaths):
    """What the tools print while a run executes (dagster-dbt re-prints every line of dbt's log, Feast
    its materialization progress) goes to `pipeline.log` in the state directory: the terminal gets
    one line per run. With MLPLATFORM_PIPELINE_LOG_LEVEL at INFO or DEBUG, everything is printed."""
    if os.environ.get(LOG_LEVEL_ENV, "WARNING").upper() in ("DEBUG", "INFO"):
        yield
        return
    with open(paths.home / TOOLS_LOG, "a") as log, redirect_stdout(log), redirect_stderr(log):
        yield


def _execute(job: "dg.JobDefinition", instance: "dg.DagsterInstance", request: "dg.RunRequest", tags: dict):
    """Run a job to its end: in this process on the embedded default; on the production profile
    through the job's executor, which hands each step to a Celery worker (the job is rebuilt by
    name there, so it must be reconstructable)."""
    import dagster as dg

    from mlplatform.profile import current

    # The run's events all go to the instance (the UI shows them); the console gets what a person
    # reads: warnings and errors, unless MLPLATFORM_PIPELINE_LOG_LEVEL (`--log-level`) says more.
    quiet = {"loggers": {"console": {"config": {"log_level": os.environ.get(LOG_LEVEL_ENV, "WARNING").upper()}}}}
    if not current().production:
        return job.execute_in_process(instance=instance, partition_key=request.partition_key, tags=tags,
                                      asset_selection=request.asset_selection, raise_on_error=False,
                                      run_config=quiet)
    if request.partition_key:
        tags = {**tags, "dagster/partition": request.partition_key}
    from mlplatform.automation.celery_app import app
    from mlplatform.automation.lost_workers import watching

    from mlplatform.usecases import active

    # Rebuilt by the use case's name: a worker's process may serve any enabled use case.
    recon = dg.build_reconstructable_job("mlplatform.locations", "job_of", (active().name, request.job_name))
    with warnings.catch_warnings(), watching(app):  # a step whose worker died fails instead of hanging
        # dagster-celery registers its step task again for every run it executes (Celery says so,
        # and keeps the first, which is the same task).
        warnings.filterwarnings("ignore", message="Task name 'execute_plan' is already registered")
        return dg.execute_job(recon, instance, tags=tags, asset_selection=request.asset_selection,
                              raise_on_error=False, run_config=quiet)


def _step_errors(result) -> dict[str, str]:
    from mlplatform.automation.failures import step_error

    return {e.step_key: step_error(e) for e in result.all_events if e.is_step_failure}
