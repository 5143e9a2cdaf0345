"""Dagster's default run launcher, able to say whether a run's process still lives.

The default launcher starts each run as a local process but cannot check on it, so Dagster's run
monitoring leaves a run whose process was killed STARTED forever. This one answers the health
check from the process itself (`recovery.liveness`), so the daemon marks such a run failed and
frees its pool slots. Named in `dagster.yaml` (`run_launcher:`), it is loaded by every process
that opens the instance: it imports nothing heavy.
"""

from __future__ import annotations

from dagster._core.launcher import DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus


class LocalRunLauncher(DefaultRunLauncher):
    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        from mlplatform.automation.recovery import liveness

        state = liveness(self._instance, run)
        if state.alive is False:
            return CheckRunHealthResult(WorkerStatus.FAILED, f"the run's worker process is gone: {state.detail}")
        return CheckRunHealthResult(WorkerStatus.RUNNING if state.alive else WorkerStatus.UNKNOWN, state.detail)
