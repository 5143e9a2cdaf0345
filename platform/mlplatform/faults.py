"""Named points where a test can stop the process, to cause a crash at an exact moment.

`MLPLATFORM_PAUSE_AT=<point>` makes the first process that reaches the point write
`$MLPLATFORM_HOME/paused_at_<point>` (its pid) and sleep: the test then kills it with `kill -9`, as
an operator's machine would. While that file exists, later processes pass the point (so the run
that redoes the work under `dagster dev` is not held too). Unset (always, outside tests), a point
costs one dictionary lookup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_ENV = "MLPLATFORM_PAUSE_AT"


def crash_point(name: str) -> None:
    if os.environ.get(PAUSE_ENV) != name:
        return
    from mlplatform.state import StatePaths

    marker = StatePaths.resolve(None).home / f"paused_at_{name}"
    try:
        with open(marker, "x") as out:  # one process pauses: the first to create the file
            out.write(str(os.getpid()))
    except FileExistsError:
        return
    while True:  # until killed
        time.sleep(1)


def kill_at_point(command: list[str], env: dict[str, str], home: Path, point: str, *, log: Path,
                  timeout_s: float = 600) -> float:
    """Start `command` in a process group of its own, paused at `point`, and `kill -9` the group once
    it is there (its children, dbt's process say, die with it). Returns the seconds it ran."""
    import signal
    import subprocess

    marker = home / f"paused_at_{point}"
    marker.unlink(missing_ok=True)
    started = time.monotonic()
    with open(log, "w") as out:
        process = subprocess.Popen(command, env={**env, PAUSE_ENV: point}, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        while not marker.exists():
            if process.poll() is not None:
                raise RuntimeError(f"{' '.join(command)} ended before {point}: {log.read_text()[-3000:]}")
            if time.monotonic() - started > timeout_s:
                raise RuntimeError(f"{' '.join(command)} did not reach {point} in {timeout_s:.0f} s")
            time.sleep(0.1)
        return time.monotonic() - started
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        marker.unlink(missing_ok=True)
