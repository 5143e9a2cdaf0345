"""`mlplatform dev` (what `make run` starts): the platform on one state directory, once.

It prepares the state directory, starts the same-day stream's consumer (for a use case with a
stream) and `dagster dev` (webserver and daemon) on the workspace, and stops the consumer with it.
A second `mlplatform dev` on the same state directory would start a second daemon (Dagster then
warns of "multiple daemon processes" every 30 s and both tick the sensors) and a second consumer:
it refuses instead, naming the one running. The consumer guards itself the same way
(`mlplatform consume --follow`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from mlplatform.locks import hold_alone
from mlplatform.state import StatePaths

DEV_LOCK = "dev.lock"
CONSUMER_LOG = "stream-consumer.log"
ROOT = Path(__file__).resolve().parents[2]


def run_dev(paths: StatePaths, host: str, port: int) -> int:
    from mlplatform.prepare import prepare
    from mlplatform.usecases import active

    held = hold_alone(paths.ensure().home / DEV_LOCK, "mlplatform dev", {"url": f"http://{host}:{port}"})
    for line in prepare(paths):
        print(line, flush=True)
    # The environment's own tools first (dbt for dagster-dbt), as under `make run`.
    tools = str(Path(sys.executable).parent)
    env = {**os.environ, "MLPLATFORM_HOME": str(paths.home), "DAGSTER_HOME": str(paths.dagster_home),
           "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"}
    cli = str(Path(sys.executable).with_name("mlplatform"))
    consumer = None
    if active().features.same_day_service is not None:
        # Appended, not truncated: the log of an earlier session stays readable.
        with open(paths.home / CONSUMER_LOG, "a") as log:
            consumer = subprocess.Popen([cli, "consume", "--follow"], env=env, stdout=log, stderr=subprocess.STDOUT)
        print(f"the stream's consumer runs beside it (pid {consumer.pid}; log {paths.home / CONSUMER_LOG})", flush=True)
    dagster = str(Path(sys.executable).with_name("dagster"))
    server = subprocess.Popen([dagster, "dev", "-h", host, "-p", str(port), "-w", str(ROOT / "workspace.yaml")],
                              env=env, cwd=ROOT)
    # Ctrl-C reaches the whole foreground group; a TERM to this process is passed on as the Ctrl-C
    # that `dagster dev` shuts its webserver, daemon and code server down on.
    signal.signal(signal.SIGTERM, lambda *_: server.send_signal(signal.SIGINT))
    try:
        return server.wait()
    except KeyboardInterrupt:
        return server.wait()
    finally:
        if consumer is not None:
            consumer.terminate()
            consumer.wait(timeout=30)
        held.close()
