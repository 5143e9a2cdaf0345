"""One platform per state directory: a second `mlplatform dev` (what `make run` starts) or a second
following consumer on a state directory in use refuses, naming the one running, and starts nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from servers import free_port

pytestmark = pytest.mark.fast
CLI = str(Path(sys.executable).with_name("mlplatform"))


def _start(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([CLI, "--home", str(home), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env={**os.environ, "DAGSTER_HOME": str(home / "dagster")})


def _holder(lock: Path, process: subprocess.Popen) -> dict:
    deadline = time.monotonic() + 60
    while True:
        try:
            holder = json.loads(lock.read_text() or "{}")
            if holder.get("pid") == str(process.pid):  # not what a killed holder left
                return holder
        except (OSError, ValueError):
            pass
        assert process.poll() is None and time.monotonic() < deadline, "the first one did not start"
        time.sleep(0.2)


@pytest.mark.parametrize("command, lock", [(["dev", "--port", "PORT"], "dev.lock"),
                                           (["consume", "--follow"], "consumer.lock")])
def test_a_second_one_on_a_state_directory_in_use_refuses_naming_the_first(tmp_path: Path, command, lock) -> None:
    home = tmp_path / "home"
    port = str(free_port())
    command = [port if part == "PORT" else part for part in command]
    first = _start(home, *command)
    try:
        _holder(home / lock, first)
        second = subprocess.run([CLI, "--home", str(home), *command], capture_output=True, text=True, timeout=120,
                                env={**os.environ, "DAGSTER_HOME": str(home / "dagster")})
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"already runs on this state directory (pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr and first.poll() is None
        if command[0] == "dev":
            assert f"url http://127.0.0.1:{port}" in second.stderr
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    # The kernel dropped the lock with the killed process: the next one starts.
    again = _start(home, *command)
    try:
        _holder(home / lock, again)
    finally:
        os.killpg(again.pid, signal.SIGKILL)
        again.wait(timeout=30)
