"""Benchmark: a fit on one CPU thread against one per core, on a quiet machine and on a busy one.

What `TrainingDevice.cpu_threads` decides. The same training set's split is fitted by the network
(its training pass, a fixed number of epochs) and by gradient boosting (scikit-learn's
HistGradientBoosting with the platform's early stopping), each inside `limited_threads(n)`: with one
thread, and with one per core. "Busy" starts as many spinning processes as there are cores for the
time of the fit, as a second run, a Celery worker beside it, or the test suite's other workers do.

    python benchmarks/run.py threads
"""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from common import Context, figure


@contextmanager
def busy_machine(busy: bool):
    """While inside: one spinning process per core (by PID, stopped after)."""
    from mlplatform.ml.device import cpu_count

    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cpu_count() if busy else 0)]
    try:
        time.sleep(0.5 if busy else 0)
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def measure(training_set: Path, epochs: int, repeats: int) -> dict:
    import pandas as pd

    from mlplatform.features.service import LABEL
    from mlplatform.ml.boosting import BoostingConfig, fit_boosting
    from mlplatform.ml.columns import CATEGORICAL, numeric_inputs
    from mlplatform.ml.device import cpu_count, limited_threads, select_device
    from mlplatform.ml.preprocess import Preprocessor
    from mlplatform.ml.split import split_by_time
    from mlplatform.ml.train import Tensors, TrainConfig, train

    frame = pd.read_parquet(training_set)
    days = frame["scheduled_departure_utc"].dt.normalize().nunique()
    span = max(1, min(14, days // 4))
    split = split_by_time(frame, holdout_days=span, validation_days=span)
    numeric = numeric_inputs(frame)
    pre = Preprocessor.fit(split.train, list(CATEGORICAL), numeric)
    data = [Tensors.from_arrays(*pre.transform(p), p[LABEL].astype(bool).to_numpy())
            for p in (split.train, split.validation)]
    config = TrainConfig(max_epochs=epochs, patience=epochs + 1)

    def network(threads: int) -> None:
        train(*data, pre.cardinalities, pre.n_numeric_inputs, select_device("cpu", cpu_threads=threads), config)

    def boosting(threads: int) -> None:
        fit_boosting(split, numeric, BoostingConfig(), with_refit=False)

    seconds: dict[str, list[float]] = {}
    for machine in ("quiet", "busy"):
        for fit in (network, boosting):
            for threads in (1, cpu_count()):
                key = f"{fit.__name__}, {threads} thread{'s' if threads > 1 else ''}, {machine}"
                for _ in range(repeats):
                    with busy_machine(machine == "busy"), limited_threads(threads):
                        started = time.perf_counter()
                        fit(threads)
                        seconds.setdefault(key, []).append(round(time.perf_counter() - started, 3))
    return {"train_rows": len(split.train), "epochs": epochs, "cores": cpu_count(), "seconds": seconds}


def bench(ctx: Context) -> dict:
    from mlplatform.features.training import latest_manifest
    from mlplatform.state import StatePaths

    paths = StatePaths.resolve(ctx.history_home())
    result = measure(Path(latest_manifest(paths.training_sets)["path"]), epochs=1 if ctx.smoke else 5,
                     repeats=ctx.repeats)
    rows = f"{result['train_rows']:,} rows"
    figures = [figure(f"{key} ({rows})", values, "s") for key, values in result["seconds"].items()]
    return {"title": "Threads: a fit on one CPU thread and on one per core", "figures": figures, "runs": result}


BENCHMARKS = {"threads": bench}
