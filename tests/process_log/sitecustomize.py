"""Each Python process's own CPU, written when it exits: where the test suite's time goes by process.

    PYTHONPATH=tests/process_log MLPLATFORM_PROCESS_LOG=/tmp/processes.jsonl make test

Python imports `sitecustomize` at start from the path, so every process the suite starts (pytest's
workers, `mlplatform`, dbt, Dagster's run workers, the servers) appends one JSON line: its first
arguments, its user and system CPU seconds, its wall seconds, and whether it imported PyTorch, Feast,
MLflow and dagster-dbt. A process killed with SIGKILL, or one ending through `os._exit` (a Celery
pool's child), writes nothing. docs/tests.md has the table it gave.
"""

import atexit
import json
import os
import sys
import time

_STARTED = time.time()
_LIBRARIES = {"torch": "torch", "feast": "feast", "mlflow": "mlflow", "dbt": "dagster_dbt"}


def _write() -> None:
    path = os.environ.get("MLPLATFORM_PROCESS_LOG")
    if not path:
        return
    times = os.times()
    line = {"argv": sys.argv[:6], "cpu": round(times.user + times.system, 2),
            "wall": round(time.time() - _STARTED, 2),
            **{name: module in sys.modules for name, module in _LIBRARIES.items()}}
    try:
        with open(path, "a") as log:
            log.write(json.dumps(line) + "\n")
    except OSError:  # a read-only or full directory in a fault test: the line is lost, not the process
        pass


atexit.register(_write)
