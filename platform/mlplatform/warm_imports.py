"""Import the libraries a run's later steps need while an earlier step waits on a subprocess.

A `daily_refresh` run spends its first seconds waiting on dbt (a subprocess), then its online,
drift and scoring steps import Feast, MLflow and PyTorch, about 4 s on a 2-core laptop, in a
process the daemon started for this run alone. Importing them in a thread while dbt runs overlaps
the two (measured in benchmarks/one_new_day.py, see docs/benchmarks.md).
"""

import importlib
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


@contextmanager
def imports_warmed(modules: Iterable[str]) -> Iterator[threading.Thread]:
    """Import `modules` in a background thread for the duration of the block, then wait for it,
    so no import is left half done when the step ends (or the run's process exits)."""
    names = list(modules)

    def load() -> None:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001  # the step that needs it imports it again and reports
                pass

    thread = threading.Thread(target=load, name="warm-imports", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        thread.join()
