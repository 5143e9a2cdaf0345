"""One writer at a time: DuckDB lets a single process open its file for writing.

Dagster's `warehouse` pool (limit 1 in the instance config) keeps runs from even starting two
writers; this file lock is the guarantee underneath, for whatever else writes (a test, the CLI, an
instance without the pool limit): a second writer waits its turn instead of failing on DuckDB's
"Could not set lock on file".
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class WarehouseBusy(TimeoutError):
    pass


@contextmanager
def warehouse_lock(warehouse_dir: Path, *, timeout_s: float = 3600.0,
                   on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    warehouse_dir.mkdir(parents=True, exist_ok=True)
    path = warehouse_dir / "writer.lock"
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout_s
        waiting = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting and on_wait:
                    on_wait(f"another process is writing the warehouse; waiting for {path}")
                waiting = True
                if time.monotonic() > deadline:
                    raise WarehouseBusy(f"the warehouse stayed locked for {timeout_s:.0f}s ({path})") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
