"""Alerts on failed runs: real Dagster runs fail and succeed, the run-failure sensor sees them, and a
local HTTP receiver on 127.0.0.1 records what the webhook got."""

from collections.abc import Iterator

import dagster as dg
import pytest

from mlplatform.state import StatePaths
from webhook import Receiver


class Outcome(dg.Config):
    fail: bool = True


@dg.op
def step(config: Outcome) -> None:
    if config.fail:
        raise dg.Failure("the warehouse file is locked")


@dg.job
def nightly() -> None:
    step()


@dg.job
def weekly() -> None:
    step()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Iterator[tuple[StatePaths, dg.DagsterInstance, Receiver]]:
    receiver = Receiver()
    monkeypatch.setenv("MLPLATFORM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLPLATFORM_ALERT_WEBHOOK_URL", receiver.url)
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield StatePaths.resolve(None), instance, receiver
    receiver.close()


def _run(instance: dg.DagsterInstance, job: dg.JobDefinition, fail: bool) -> None:
    """Run the job; a failure goes through the run-failure sensor as the daemon would hand it over."""
    result = job.execute_in_process(instance=instance, raise_on_error=False,
                                    run_config={"ops": {"step": {"config": {"fail": fail}}}})
    assert result.success is not fail
    if fail:
        _hand_to_the_failure_sensor(instance, result)


def _hand_to_the_failure_sensor(instance: dg.DagsterInstance, result) -> None:
    """What the daemon does with a failed run: its run-failure sensor gets the run and its event."""
    from mlplatform.automation.failures import run_failure_sensor

    failure = next(iter(instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE))).dagster_event
    run_failure_sensor(dg.build_run_status_sensor_context(
        sensor_name="run_failure_sensor", dagster_instance=instance,
        dagster_run=instance.get_run_by_id(result.run_id), dagster_event=failure).for_run_failure())


def test_a_failing_job_alerts_once_until_it_succeeds(home) -> None:
    from mlplatform.automation.alerts import alerts
    from mlplatform.automation.failures import failures

    paths, instance, receiver = home
    _run(instance, nightly, fail=True)
    _run(instance, nightly, fail=True)  # the same condition, still open: no second alert
    [sent] = receiver.received
    assert sent["text"].startswith("*nightly failed*") and "step: the warehouse file is locked" in sent["text"]
    assert sent["mlplatform"]["key"] == "run_failed:nightly"
    assert len(failures(paths)) == 2  # every failure is still recorded

    _run(instance, weekly, fail=True)  # another job: another condition
    assert [b["mlplatform"]["job"] for b in receiver.received] == ["nightly", "weekly"]

    _run(instance, nightly, fail=False)  # nightly is well again: its condition clears
    _run(instance, nightly, fail=True)
    _run(instance, weekly, fail=True)  # weekly never succeeded: still open
    assert [b["mlplatform"]["job"] for b in receiver.received] == ["nightly", "weekly", "nightly"]
    assert [a["delivered"] for a in alerts(paths)] == ["yes", "yes", "yes"]


def test_an_unreachable_webhook_is_logged_and_tried_again(home, monkeypatch) -> None:
    from mlplatform.automation.alerts import alerts

    paths, instance, receiver = home
    monkeypatch.setenv("MLPLATFORM_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/nowhere")  # the discard port: refused
    _run(instance, nightly, fail=True)
    [missed] = alerts(paths)
    assert missed["delivered"].startswith("the webhook could not be reached")
    monkeypatch.setenv("MLPLATFORM_ALERT_WEBHOOK_URL", receiver.url)
    _run(instance, nightly, fail=True)  # not delivered before, so the condition did not open
    assert len(receiver.received) == 1 and alerts(paths)[-1]["delivered"] == "yes"


def test_without_a_webhook_alerts_are_only_logged(home, monkeypatch) -> None:
    from mlplatform.automation.alerts import alerts

    paths, instance, receiver = home
    monkeypatch.delenv("MLPLATFORM_ALERT_WEBHOOK_URL")
    _run(instance, nightly, fail=True)
    _run(instance, nightly, fail=True)
    [logged] = alerts(paths)
    assert logged["delivered"] == "log only" and logged["job"] == "nightly" and not receiver.received


def test_an_overdue_online_store_fails_its_freshness_policy_and_alerts_once(home) -> None:
    """The daemon's own evaluation of the online store's freshness policy (26 h, warning from 24 h),
    with its clock moved on: fresh when written, a warning after 25 h, overdue after 27 h, with
    exactly one alert however often the sensor looks; written again it is fresh and the condition
    clears, so the next time it is overdue alerts again."""
    import asyncio
    from datetime import datetime, timedelta, timezone

    from dagster._core.loader import LoadingContextForTest
    from dagster._core.test_utils import freeze_time
    from dagster._daemon.freshness import FreshnessDaemon

    from mlplatform.automation.alerts import alerts
    from mlplatform.automation.freshness import alert_overdue
    from mlplatform.definitions import defs

    paths, instance, receiver = home
    node = defs.resolve_asset_graph().get(dg.AssetKey("online_features"))
    daemon = FreshnessDaemon()

    def state_after(hours: float) -> str:
        """The daemon's evaluation, then the freshness sensor's, `hours` from now."""
        with freeze_time(datetime.now(timezone.utc) + timedelta(hours=hours)):
            asyncio.run(daemon._evaluate_asset(context=LoadingContextForTest(instance), node=node))
            return alert_overdue(instance, paths)["online_features"]

    instance.report_runless_asset_event(dg.AssetMaterialization("online_features"))
    assert [state_after(h) for h in (0, 25, 27, 30)] == ["PASS", "WARN", "FAIL", "FAIL"]
    assert len(receiver.received) == 1 and "online_features is overdue" in receiver.received[0]["text"]

    instance.report_runless_asset_event(dg.AssetMaterialization("online_features"))
    assert state_after(0) == "PASS"
    assert state_after(27) == "FAIL"
    assert len(receiver.received) == 2
    assert [a["key"] for a in alerts(paths)] == ["freshness_overdue:online_features"] * 2


def test_freshness_windows_are_configured_and_checked(monkeypatch) -> None:
    from mlplatform.automation.freshness import policies

    monkeypatch.setenv("MLPLATFORM_FRESHNESS_DAILY_HOURS", "2")
    chosen = policies()[dg.AssetKey("batch_predictions")]
    assert chosen.fail_window.to_timedelta().total_seconds() == 7200
    assert chosen.warn_window.to_timedelta().total_seconds() == 3600
    monkeypatch.setenv("MLPLATFORM_FRESHNESS_CHAMPION_DAYS", "soon")
    with pytest.raises(ValueError, match="MLPLATFORM_FRESHNESS_CHAMPION_DAYS must be a number, not 'soon'"):
        policies()
    monkeypatch.setenv("MLPLATFORM_FRESHNESS_CHAMPION_DAYS", "0.0001")
    with pytest.raises(ValueError, match="shorter than Dagster's shortest freshness window"):
        policies()


def test_a_check_whose_alert_cannot_be_written_still_stands(home, caplog) -> None:
    """The alert log's place is taken (a directory where the file goes: writing it fails with an
    OSError, as on a full or read-only disk): the failed ERROR check is not turned into a failed
    asset, the reason is logged, and once the log can be written the alert goes out."""
    from mlplatform.automation.alerts import ALERTS_LOG, alert_on_check, alerts

    paths, _, receiver = home
    paths.ensure()
    failed = dg.AssetCheckResult(check_name="champion_above_floor", passed=False,
                                 severity=dg.AssetCheckSeverity.ERROR)
    blocker = paths.home / ALERTS_LOG
    blocker.mkdir()
    assert alert_on_check(paths, "live_performance", failed, "trailing ROC AUC 0.51 < 0.55") is False
    assert "could not record the alert check_failed:live_performance:champion_above_floor" in caplog.text
    blocker.rmdir()
    assert alert_on_check(paths, "live_performance", failed, "trailing ROC AUC 0.51 < 0.55") is True
    assert [a["key"] for a in alerts(paths)] == ["check_failed:live_performance:champion_above_floor"]
    assert len(receiver.received) == 2  # the first post went out before its log line failed


def test_a_run_reported_by_two_paths_is_recorded_and_alerted_once_and_cleared_on_success(home) -> None:
    """The sensor and the recovery (or the pipeline) may both see one failed run: one record, one
    alert. The condition clears on the job's next success, before any new failure, so that
    `alerts_open.json` says what is still wrong."""
    import json

    from mlplatform.automation.alerts import OPEN_ALERTS, clear_jobs_that_succeeded
    from mlplatform.automation.failures import failures, report_failure

    paths, instance, receiver = home
    _run(instance, nightly, fail=True)
    [run] = instance.get_runs(dg.RunsFilter(job_name="nightly"))
    assert report_failure(paths, instance, run, "seen again by the recovery", {}) is None
    assert len(failures(paths)) == 1 and len(receiver.received) == 1
    assert clear_jobs_that_succeeded(paths, instance) == []  # not succeeded yet: still open
    nightly.execute_in_process(instance=instance, run_config={"ops": {"step": {"config": {"fail": False}}}})
    assert clear_jobs_that_succeeded(paths, instance) == ["nightly"]
    assert json.loads((paths.home / OPEN_ALERTS).read_text()) == {}


def test_a_lost_service_leads_the_failure_alert(home) -> None:
    """A run that failed because a production service went away (`report_failure` probes them):
    the alert names the service's setting first, then the failed steps."""
    from mlplatform.automation.failures import alert_failed_run

    paths, instance, receiver = home
    lost = "MLPLATFORM_REDIS_URL=redis://127.0.0.1:6390/0: Redis at 127.0.0.1:6390: cannot be reached (refused)"
    entry = {"run_id": "r1", "job": "daily_refresh", "trigger": "manual", "partition": "2013-01-02",
             "error": lost, "failed_steps": {"online_features": "ConnectionError"}, "lost_services": [lost]}
    assert alert_failed_run(paths, instance, entry)
    [sent] = receiver.received
    assert sent["text"].startswith("*daily_refresh failed*\nrun r1") and f": {lost}; online_features" in sent["text"]


@dg.op
def crashing_step() -> None:
    [][1]  # a bug in a step: an exception of its own, not a dg.Failure


@dg.op
def coloured_step() -> None:
    raise dg.Failure("1 of 3 \x1b[31mERROR\x1b[0m creating model")  # as dbt logs its errors


@dg.op
def online_write_step() -> None:
    """What a step meets when Redis goes away under it: the client's own error (a port nothing
    listens on)."""
    import redis

    from servers import free_port

    redis.Redis(port=free_port(), socket_connect_timeout=1).ping()


@dg.job
def online_write() -> None:
    online_write_step()


def test_a_service_lost_during_a_run_is_named_though_it_answers_when_the_run_is_reported(home) -> None:
    """Under the daemon, the run-failure sensor reports a run seconds after it failed; its server may
    answer again by then (here: no production service is configured at all, so none is unreachable
    now). The step's own error still names the lost service's setting, in the record and the alert."""
    from mlplatform.automation.failures import failures

    paths, instance, receiver = home
    result = online_write.execute_in_process(instance=instance, raise_on_error=False)
    _hand_to_the_failure_sensor(instance, result)
    [entry] = failures(paths)
    [lost] = entry["lost_services"]
    assert lost.startswith("MLPLATFORM_REDIS_URL: its server stopped answering during the run (online_write_step: "
                           "redis.exceptions.ConnectionError: ")
    assert "rerun once it answers" in lost and entry["error"].startswith(lost)
    [sent] = receiver.received
    assert "MLPLATFORM_REDIS_URL: its server stopped answering" in sent["text"]


@dg.job
def coloured() -> None:
    coloured_step()


@dg.job
def crashing() -> None:
    crashing_step()


def test_a_step_that_raises_is_recorded_with_its_own_exception(home) -> None:
    """Dagster wraps a step's exception ("Error occurred while executing op ..."): the record and the
    alert carry the exception itself."""
    from mlplatform.automation.failures import failures, run_error, step_error

    paths, instance, _ = home
    result = crashing.execute_in_process(instance=instance, raise_on_error=False)
    [event] = [e for e in result.all_events if e.is_step_failure]
    assert step_error(event) == "IndexError: list index out of range"
    assert run_error(result.all_events) == "crashing_step: IndexError: list index out of range"
    _hand_to_the_failure_sensor(instance, result)
    [entry] = failures(paths)
    assert entry["failed_steps"] == {"crashing_step": "IndexError: list index out of range"}


def test_a_coloured_error_is_recorded_as_its_text(home) -> None:
    from mlplatform.automation.failures import step_error

    _, instance, _ = home
    result = coloured.execute_in_process(instance=instance, raise_on_error=False)
    [event] = [e for e in result.all_events if e.is_step_failure]
    assert step_error(event) == "1 of 3 ERROR creating model"
