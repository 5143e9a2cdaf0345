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
    from mlplatform.automation.failures import run_failure_sensor

    result = job.execute_in_process(instance=instance, raise_on_error=False,
                                    run_config={"ops": {"step": {"config": {"fail": fail}}}})
    assert result.success is not fail
    if fail:
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
