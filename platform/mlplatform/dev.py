"""`mlplatform dev` (what `make run` starts): the platform on one state directory, once.

It prepares the state directory, starts the same-day stream's consumer (for each use case with a
stream) and `dagster dev` (webserver and daemon) on the workspace, and stops the consumers with it.
With one use case enabled the workspace is the checkout's `workspace.yaml`; with several, one code
location per use case (`mlplatform.locations`), written to the Dagster home.
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
import time
from pathlib import Path

from mlplatform.locks import hold_alone
from mlplatform.state import StatePaths

DEV_LOCK = "dev.lock"
# When the last `mlplatform dev` stopped (seconds since the epoch): the daemon's queue stopped with
# it, and a headless pipeline need not wait for the runs it left queued (automation/recovery.py).
DEV_STOPPED = "dev.stopped"
CONSUMER_LOG = "stream-consumer.log"
ROOT = Path(__file__).resolve().parents[2]


def run_dev(paths: StatePaths, host: str, port: int) -> int:
    from mlplatform.ingest.files import write_bytes_atomically
    from mlplatform.locations import workspace_yaml
    from mlplatform.prepare import prepare
    from mlplatform.usecases import USE_CASE_ENV, enabled

    held = hold_alone(paths.ensure().home / DEV_LOCK, "mlplatform dev", {"url": f"http://{host}:{port}"})
    for line in prepare(paths):
        print(line, flush=True)
    # The environment's own tools first (dbt for dagster-dbt), as under `make run`.
    tools = str(Path(sys.executable).parent)
    env = {**os.environ, "MLPLATFORM_HOME": str(paths.home), "DAGSTER_HOME": str(paths.dagster_home),
           "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"}
    cli = str(Path(sys.executable).with_name("mlplatform"))
    use_cases = enabled()
    workspace = ROOT / "workspace.yaml"
    if len(use_cases) > 1:
        workspace = paths.dagster_home / "workspace.yaml"
        write_bytes_atomically(workspace, workspace_yaml().encode())
        print(f"one code location per use case ({', '.join(u.name for u in use_cases)}): {workspace}", flush=True)
    consumers = []
    for use_case in use_cases:
        if use_case.features.same_day_service is None:
            continue
        # Appended, not truncated: the log of an earlier session stays readable.
        log_path = paths.home / (CONSUMER_LOG if len(use_cases) == 1 else f"{use_case.name}-{CONSUMER_LOG}")
        with open(log_path, "a") as log:
            consumers.append(subprocess.Popen([cli, "--use-case", use_case.name, "consume", "--follow"],
                                              env=env, stdout=log, stderr=subprocess.STDOUT))
        print(f"{use_case.name}'s stream consumer runs beside it (pid {consumers[-1].pid}; log {log_path})", flush=True)
    dagster = str(Path(sys.executable).with_name("dagster"))
    server = subprocess.Popen([dagster, "dev", "-h", host, "-p", str(port), "-w", str(workspace)],
                              env={k: v for k, v in env.items() if k != USE_CASE_ENV}, cwd=ROOT)
    # Ctrl-C reaches the whole foreground group; a TERM to this process is passed on as the Ctrl-C
    # that `dagster dev` shuts its webserver, daemon and code server down on.
    signal.signal(signal.SIGTERM, lambda *_: server.send_signal(signal.SIGINT))
    try:
        return server.wait()
    except KeyboardInterrupt:
        return server.wait()
    finally:
        if server.poll() is not None:  # its daemon is gone: the runs it left queued wait for nothing
            write_bytes_atomically(paths.home / DEV_STOPPED, str(time.time()).encode())
        for consumer in consumers:
            consumer.terminate()
        for consumer in consumers:
            try:
                consumer.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a consumer that does not stop must not keep the directory held
                consumer.kill()
                consumer.wait()
        held.close()
