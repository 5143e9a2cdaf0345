"""One writer at a time: DuckDB lets a single process open its file for writing.

Dagster's `warehouse` pool (limit 1 in the instance config) keeps runs from even starting two
writers; this file lock is the guarantee underneath, for whatever else writes (a test, the CLI, an
instance without the pool limit): a second writer waits its turn instead of failing on DuckDB's
"Could not set lock on file".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mlplatform.locks import LockBusy, file_lock


class WarehouseBusy(LockBusy):
    pass


@contextmanager
def warehouse_lock(warehouse_dir: Path, *, timeout_s: float = 3600.0,
                   on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    path = warehouse_dir / "writer.lock"
    try:
        with file_lock(path, timeout_s=timeout_s, what="another process writing the warehouse", on_wait=on_wait):
            yield
    except LockBusy as err:
        raise WarehouseBusy(f"the warehouse stayed locked for {timeout_s:.0f}s ({path})") from err
