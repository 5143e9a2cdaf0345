"""Alerts: a condition that needs a person, sent once to a webhook until it clears.

A condition has a key (for a failed run, its job: `run_failed:daily_refresh`). The first time it is
raised, the alert goes to `MLPLATFORM_ALERT_WEBHOOK_URL` as Slack-compatible JSON (`{"text": ...}`,
which Slack, Mattermost and Teams' incoming webhooks all take) and into `alerts.jsonl` in the state
directory; while it stays open, raising it again sends nothing. It clears when what it is about is
well again (for a failed job: a later run of the same job succeeded; for a failed ERROR check, its
next evaluation passing), and the next failure alerts again. Without a webhook URL, alerts are only written to the log.

A webhook that cannot be reached does not open the condition, so the next occurrence tries again;
the log says why it was not delivered.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import dagster as dg
from pydantic import Field

from mlplatform.state import StatePaths

ALERTS_LOG = "alerts.jsonl"
OPEN_ALERTS = "alerts_open.json"


class AlertPolicy(dg.ConfigurableResource):
    """Where alerts go (env MLPLATFORM_ALERT_<FIELD>)."""

    webhook_url: str | None = Field(
        default=None, description="An incoming webhook taking Slack-compatible JSON (env MLPLATFORM_ALERT_WEBHOOK_URL). "
                                  "Unset: alerts are written to alerts.jsonl only.")
    timeout_seconds: float = Field(default=5.0, gt=0, description="How long a webhook call may take.")


@dataclass(frozen=True)
class Alert:
    key: str        # the condition: the same key alerts once until it clears
    title: str
    text: str
    details: dict[str, Any]


def _post(url: str, alert: Alert, timeout: float) -> str | None:
    """Send the alert; None when delivered, else why not."""
    body = json.dumps({"text": f"*{alert.title}*\n{alert.text}", "mlplatform": {"key": alert.key, **alert.details}})
    request = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            if answer.status >= 300:
                return f"the webhook answered {answer.status}"
    except urllib.error.HTTPError as err:
        return f"the webhook answered {err.code}"
    except (urllib.error.URLError, OSError) as err:
        return f"the webhook could not be reached: {getattr(err, 'reason', err)}"
    return None


class Notifier:
    """Raises alerts for one state directory, remembering which conditions are open."""

    def __init__(self, paths: StatePaths, policy: AlertPolicy) -> None:
        self.paths, self.policy = paths.ensure(), policy

    def _open(self) -> dict[str, dict]:
        path = self.paths.home / OPEN_ALERTS
        return json.loads(path.read_text()) if path.exists() else {}

    def _save(self, conditions: dict[str, dict]) -> None:
        from mlplatform.ingest.files import write_bytes_atomically

        # Atomic: a crash leaves the old file or the new one.
        write_bytes_atomically(self.paths.home / OPEN_ALERTS, json.dumps(conditions, indent=1).encode())

    def raise_alert(self, alert: Alert, cleared: Callable[[str], bool] = lambda opened_at: False) -> bool:
        """Send `alert` unless its condition is open and has not cleared since (`cleared` gets the
        time it opened). True when it was sent or, without a webhook, logged as new."""
        conditions = self._open()
        held = conditions.get(alert.key)
        if held is not None and not cleared(held["opened_at"]):
            return False
        now = datetime.now(timezone.utc).isoformat()
        failure = _post(self.policy.webhook_url, alert, self.policy.timeout_seconds) if self.policy.webhook_url else None
        entry = {"at": now, "key": alert.key, "title": alert.title, "text": alert.text, **alert.details,
                 "delivered": "log only" if not self.policy.webhook_url else ("yes" if failure is None else failure)}
        with open(self.paths.home / ALERTS_LOG, "a") as log:
            log.write(json.dumps(entry) + "\n")
        if failure is not None:
            conditions.pop(alert.key, None)
        else:
            conditions[alert.key] = {"opened_at": now, "title": alert.title}
        self._save(conditions)
        return failure is None

    def clear(self, key: str) -> bool:
        """The condition is well again (a check passed): the next occurrence alerts. True if it was open."""
        conditions = self._open()
        if conditions.pop(key, None) is None:
            return False
        with open(self.paths.home / ALERTS_LOG, "a") as log:
            log.write(json.dumps({"at": datetime.now(timezone.utc).isoformat(), "key": key, "cleared": True}) + "\n")
        self._save(conditions)
        return True


def alerts(paths: StatePaths) -> list[dict]:
    """Every alert raised, oldest first (not the lines that say a condition cleared)."""
    from mlplatform.automation.records import read_jsonl

    return [entry for entry in read_jsonl(paths.home / ALERTS_LOG) if not entry.get("cleared")]


def notifier(paths: StatePaths) -> Notifier:
    """The notifier configured by the environment (MLPLATFORM_ALERT_*)."""
    from mlplatform.resources import settings_from_env

    return Notifier(paths, settings_from_env(AlertPolicy, "MLPLATFORM_ALERT"))


def alert_on_check(paths: StatePaths, asset: str, result: dg.AssetCheckResult, text: str) -> bool:
    """An ERROR check that failed raises `check_failed:<asset>:<check>` once; its passing clears it.
    WARN checks show in the UI only: a person is told about what needs them."""
    import logging

    key = f"check_failed:{asset}:{result.check_name}"
    try:
        if result.passed:
            notifier(paths).clear(key)
            return False
        if result.severity != dg.AssetCheckSeverity.ERROR:
            return False
        return notifier(paths).raise_alert(Alert(key=key, title=f"{asset}: check {result.check_name} failed",
                                                 text=text, details={"asset": asset, "check": result.check_name}))
    except OSError as err:
        # The check's result stands (it is in Dagster's event log and the UI) even when the alert log
        # cannot be written (a full or read-only disk): the asset that checks must not fail for it.
        logging.getLogger(__name__).error(f"could not record the alert {key}: {err}")
        return False


RUN_FAILED = "run_failed:"


def clear_jobs_that_succeeded(paths: StatePaths, instance: dg.DagsterInstance) -> list[str]:
    """Clear each open failed-job condition whose job has succeeded since it opened (the freshness
    sensor's tick, and `mlplatform pipeline` after its runs): `alerts_open.json` says what is still
    wrong. The jobs cleared."""
    path = paths.home / OPEN_ALERTS
    if not path.exists():
        return []
    held = {key: c for key, c in json.loads(path.read_text()).items() if key.startswith(RUN_FAILED)}
    cleared = [key for key, c in held.items() if job_succeeded_since(instance, key[len(RUN_FAILED):])(c["opened_at"])]
    if cleared:
        alerting = notifier(paths)
        for key in cleared:
            alerting.clear(key)
    return [key[len(RUN_FAILED):] for key in cleared]


def job_succeeded_since(instance: dg.DagsterInstance, job: str) -> Callable[[str], bool]:
    """A failed job's condition clears once a run of that job succeeds after the alert."""
    def cleared(opened_at: str) -> bool:
        since = datetime.fromisoformat(opened_at)
        runs = instance.get_runs(dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus.SUCCESS],
                                               updated_after=since), limit=1)
        return bool(runs)
    return cleared
