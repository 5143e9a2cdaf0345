"""File locks: one holder at a time across processes, released by the kernel when the holder dies.

`flock` on a file under the state directory: a process killed with `kill -9` cannot leave a lock
held (the kernel drops it with the file descriptor), so a crash never wedges the next command.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class LockBusy(TimeoutError):
    pass


@contextmanager
def file_lock(path: Path, *, timeout_s: float = 3600.0, what: str = "another process",
              on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path`, waiting up to `timeout_s` for the current holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout_s
        waiting = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting and on_wait:
                    on_wait(f"{what} holds {path}; waiting for it")
                waiting = True
                if time.monotonic() > deadline:
                    raise LockBusy(f"{path} stayed locked for {timeout_s:.0f}s ({what})") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class InUse(RuntimeError):
    """Another process holds a one-per-state-directory lock; the message names it."""


def hold_alone(path: Path, what: str, about: dict[str, str]) -> "object":
    """Take the lock on `path` for this process's lifetime, or raise `InUse` naming its holder (from
    what the holder wrote beside it: `about`, its pid and when it started). The open file is the
    lock: keep the returned handle; the kernel drops it when the process ends, however it ends."""
    import json
    import os
    from datetime import datetime, timezone

    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        try:
            holder = json.loads(handle.read() or "{}")
        except ValueError:
            holder = {}
        handle.close()
        said = ", ".join(f"{k} {v}" for k, v in holder.items()) or "a process that has not said which"
        raise InUse(f"{what} already runs on this state directory ({said}); stop it first, or set MLPLATFORM_HOME "
                    f"to another directory (lock: {path})") from None
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": str(os.getpid()), **about,
                             "since": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")}))
    handle.flush()
    return handle


def held(path: Path) -> bool:
    """Whether another open file holds the lock on `path` now (a `hold_alone` holder, alive). A
    path that cannot be opened (none yet, a read-only state directory) is not held."""
    try:
        handle = open(path)
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
