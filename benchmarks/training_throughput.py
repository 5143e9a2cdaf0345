"""Benchmark: training throughput of the platform's loop against a bare PyTorch loop, same tensors.

Both train the same TabularNet with the same optimizer and batch size on the same tensors (a real
training set's, preprocessed). The platform's loop adds what it needs (device settings, a NaN check
per batch, per-batch copies from host memory); samples/s is training rows over the time of the
training pass of an epoch, in both (the platform's validation pass for early stopping is not in it).

    python benchmarks/run.py training   (on the history home's latest training set; CUDA too when present)
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from common import Context, figure
from mlplatform.features.service import LABEL
from mlplatform.ml.columns import CATEGORICAL, numeric_inputs
from mlplatform.ml.device import select_device
from mlplatform.ml.network import TabularNet
from mlplatform.ml.preprocess import Preprocessor
from mlplatform.ml.split import split_by_time
from mlplatform.ml.train import Tensors, TrainConfig, train


def bare_loop(data: Tensors, cardinalities, n_numeric, settings, config: TrainConfig) -> list[float]:
    """The same network and optimizer as the platform's loop builds from `config` (its hidden
    sizes, dropout, learning rate and weight decay), trained with nothing around it."""
    torch.manual_seed(config.seed)
    model = TabularNet(cardinalities, n_numeric, config.hidden, config.dropout).to(settings.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    cats, nums, label = (t.to(settings.device) for t in (data.categorical, data.numeric, data.label))
    rates = []
    for _ in range(config.max_epochs):
        started = time.perf_counter()
        for index in torch.randperm(len(label)).split(settings.batch_size):
            if len(index) < 2:
                continue
            index = index.to(settings.device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(cats[index], nums[index]), label[index])
            loss.backward()
            optimizer.step()
        if settings.device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(len(label) / (time.perf_counter() - started))
    return rates


def measure(training_set: Path, epochs: int, device: str = "auto") -> dict:
    frame = pd.read_parquet(training_set)
    days = frame["scheduled_departure_utc"].dt.normalize().nunique()
    span = max(1, min(14, days // 4))  # a year: 14 holdout and 14 validation days; a few days: one each
    split = split_by_time(frame, holdout_days=span, validation_days=span)
    pre = Preprocessor.fit(split.train, list(CATEGORICAL), numeric_inputs(frame))
    data = [Tensors.from_arrays(*pre.transform(p), p[LABEL].astype(bool).to_numpy())
            for p in (split.train, split.validation)]
    settings = select_device(device)
    config = TrainConfig(max_epochs=epochs, patience=epochs + 1)
    platform_rates = [h.samples_per_second for h in
                      train(*data, pre.cardinalities, pre.n_numeric_inputs, settings, config).history]
    bare_rates = bare_loop(data[0], pre.cardinalities, pre.n_numeric_inputs, settings, config)
    return {"device": settings.name, "batch_size": settings.batch_size, "train_rows": len(data[0]),
            "platform": platform_rates, "bare": bare_rates}


def bench(ctx: Context) -> dict:
    from mlplatform.features.training import latest_manifest
    from mlplatform.state import StatePaths

    paths = StatePaths.resolve(ctx.history_home())
    training_set = Path(latest_manifest(paths.training_sets)["path"])
    result = measure(training_set, epochs=1 if ctx.smoke else 5, device="cpu")
    label = f"{result['device']}, batch {result['batch_size']}, {result['train_rows']:,} rows"
    ratio = statistics.median(result["platform"]) / statistics.median(result["bare"])
    figures = [figure(f"platform loop ({label})", result["platform"], "samples/s", digits=0),
               figure("bare PyTorch loop, same tensors", result["bare"], "samples/s", digits=0),
               figure("platform / bare", [ratio], "x")]
    if torch.cuda.is_available():
        gpu = measure(training_set, epochs=1 if ctx.smoke else 5, device="cuda")
        figures += [figure(f"platform loop ({gpu['device']}, batch {gpu['batch_size']})", gpu["platform"],
                           "samples/s", digits=0),
                    figure("bare PyTorch loop on the GPU", gpu["bare"], "samples/s", digits=0)]
    return {"title": "Training throughput, the platform's loop against a bare loop", "figures": figures,
            "runs": result}


BENCHMARKS = {"training": bench}
