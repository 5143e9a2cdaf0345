"""Benchmark: training throughput of the platform's loop against a bare PyTorch loop, same tensors.

Both train the same TabularNet with the same optimizer and batch size on the same tensors (a real
training set's, preprocessed). The platform's loop adds what it needs (device settings, a NaN check
per batch, per-batch copies from host memory); samples/s is training rows over the time of the
training pass of an epoch, in both (the platform's validation pass for early stopping is not in it).

    python benchmarks/training_throughput.py --training-set PATH [--epochs 3] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import date
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from mlplatform.features.service import LABEL
from mlplatform.ml.columns import CATEGORICAL, numeric_inputs
from mlplatform.ml.device import select_device
from mlplatform.ml.network import TabularNet
from mlplatform.ml.preprocess import Preprocessor
from mlplatform.ml.split import split_by_time
from mlplatform.ml.train import Tensors, TrainConfig, train


def bare_loop(data: Tensors, cardinalities, n_numeric, settings, epochs: int, seed: int = 13) -> list[float]:
    torch.manual_seed(seed)
    model = TabularNet(cardinalities, n_numeric).to(settings.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-5)
    loss_fn = nn.BCEWithLogitsLoss()
    cats, nums, label = (t.to(settings.device) for t in (data.categorical, data.numeric, data.label))
    rates = []
    for _ in range(epochs):
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--training-set", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    frame = pd.read_parquet(args.training_set)
    split = split_by_time(frame, holdout_days=14, validation_days=14)
    pre = Preprocessor.fit(split.train, list(CATEGORICAL), numeric_inputs(frame))
    data = [Tensors.from_arrays(*pre.transform(p), p[LABEL].astype(bool).to_numpy())
            for p in (split.train, split.validation)]
    settings = select_device(args.device)
    config = TrainConfig(max_epochs=args.epochs, patience=args.epochs + 1)
    platform_rates = [h.samples_per_second for h in
                      train(*data, pre.cardinalities, pre.n_numeric_inputs, settings, config).history]
    bare_rates = bare_loop(data[0], pre.cardinalities, pre.n_numeric_inputs, settings, args.epochs)
    result = {"benchmark": "training_throughput", "date": date.today().isoformat(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "device": settings.name,
              "batch_size": settings.batch_size, "train_rows": len(data[0]), "epochs": args.epochs,
              "platform_samples_per_s": round(statistics.median(platform_rates)),
              "bare_samples_per_s": round(statistics.median(bare_rates)),
              "platform_min_max": [round(min(platform_rates)), round(max(platform_rates))],
              "bare_min_max": [round(min(bare_rates)), round(max(bare_rates))]}
    result["platform_over_bare"] = round(result["platform_samples_per_s"] / result["bare_samples_per_s"], 3)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
