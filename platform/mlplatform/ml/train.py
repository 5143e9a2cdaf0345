"""Training: mini-batches, early stopping on the later-in-time validation split, seeded; then,
by default, a refit from scratch on training and validation days together for the epochs that
early stopping chose (`refit`), so that the registered model learns from every day before the holdout."""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from mlplatform.features.service import LABEL
from mlplatform.ml.columns import CATEGORICAL
from mlplatform.ml.device import DeviceSettings
from mlplatform.ml.network import TabularNet
from mlplatform.ml.preprocess import Preprocessor
from mlplatform.ml.split import TimeSplit
from mlplatform.ml.task import BINARY, target


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: nothing trained this way may be registered."""


@dataclass(frozen=True)
class TrainConfig:
    max_epochs: int = 30
    patience: int = 3
    learning_rate: float = 2e-3
    # Small and regularized: a moment's exact conditions name that moment, and a wider, looser
    # network memorizes which hours were late (its training loss falls far below its validation
    # loss). The smaller one scores better on the holdout, on five weeks and on the year, than
    # (128, 64) with dropout 0.1 and weight decay 1e-5 (docs/benchmarks.md).
    weight_decay: float = 1e-3
    hidden: tuple[int, ...] = (64, 32)
    dropout: float = 0.3
    seed: int = 13
    task: str = "binary"  # or "regression" (ml/task.py)


@dataclass
class Tensors:
    categorical: torch.Tensor
    numeric: torch.Tensor
    label: torch.Tensor

    @classmethod
    def from_arrays(cls, cats: np.ndarray, nums: np.ndarray, label: np.ndarray) -> "Tensors":
        return cls(torch.from_numpy(cats), torch.from_numpy(nums), torch.from_numpy(label.astype(np.float32)))

    def __len__(self) -> int:
        return len(self.label)

    def pinned(self) -> "Tensors":
        return Tensors(self.categorical.pin_memory(), self.numeric.pin_memory(), self.label.pin_memory())


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    validation_loss: float
    samples_per_second: float


@dataclass
class TrainResult:
    model: TabularNet
    history: list[EpochStats] = field(default_factory=list)
    best_epoch: int = 0

    @property
    def best_validation_loss(self) -> float:
        return self.history[self.best_epoch - 1].validation_loss


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _batches(n: int, size: int, generator: torch.Generator | None) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return list(order.split(size))


def _loss(model: TabularNet, data: Tensors, settings: DeviceSettings, loss_fn: nn.Module) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad(), _autocast(settings):
        for index in _batches(len(data), settings.batch_size * 4, None):
            cats, nums, label = _to_device(data, index, settings)
            total += float(loss_fn(model(cats, nums).float(), label)) * len(index)
    return total / max(1, len(data))


def _to_device(data: Tensors, index: torch.Tensor, settings: DeviceSettings):
    kw = {"device": settings.device, "non_blocking": settings.non_blocking}
    return data.categorical[index].to(**kw), data.numeric[index].to(**kw), data.label[index].to(**kw)


def _autocast(settings: DeviceSettings):
    if settings.autocast_bf16:
        return torch.autocast(device_type=settings.device.type, dtype=torch.bfloat16)
    return torch.autocast(device_type="cpu", enabled=False)


def train(train_data: Tensors, validation: Tensors, cardinalities: list[int], n_numeric: int,
          settings: DeviceSettings, config: TrainConfig = TrainConfig(),
          on_epoch: Callable[[EpochStats], None] | None = None, early_stopping: bool = True,
          target_scale: tuple[float, float] | None = None) -> TrainResult:
    """Fit a TabularNet; keep the weights of the epoch with the lowest validation loss. Without early
    stopping (a refit), train exactly `config.max_epochs` epochs and keep the last weights. A
    regression's labels are the standardized target; `target_scale` (its mean and spread) goes
    with the model, which scales its output back."""
    seed_everything(config.seed)
    if settings.device.type == "cpu":
        torch.set_num_threads(settings.threads)
    if settings.pin_memory:
        train_data, validation = train_data.pinned(), validation.pinned()
    model = TabularNet(cardinalities, n_numeric, config.hidden, config.dropout, target_scale).to(settings.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss() if config.task == BINARY else nn.MSELoss()
    generator = torch.Generator().manual_seed(config.seed)
    result = TrainResult(model=model)
    best_state, best_loss, stale = None, math.inf, 0
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        started, total = time.perf_counter(), 0.0
        for index in _batches(len(train_data), settings.batch_size, generator):
            if len(index) < 2:
                continue  # batch normalization needs two rows; one leftover row waits for the next epoch
            cats, nums, label = _to_device(train_data, index, settings)
            optimizer.zero_grad(set_to_none=True)
            with _autocast(settings):
                loss = loss_fn(model(cats, nums).float(), label)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"the training loss became {loss.item()} in epoch {epoch}: "
                                       "check the inputs for infinite values or lower the learning rate")
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        seconds = time.perf_counter() - started
        stats = EpochStats(epoch, total / len(train_data), _loss(model, validation, settings, loss_fn),
                           len(train_data) / seconds)
        if not math.isfinite(stats.validation_loss):
            raise TrainingDiverged(f"the validation loss became {stats.validation_loss} in epoch {epoch}")
        result.history.append(stats)
        if on_epoch:
            on_epoch(stats)
        if not early_stopping:
            best_state, result.best_epoch = None, epoch
        elif stats.validation_loss < best_loss - 1e-5:
            best_loss, best_state, stale, result.best_epoch = stats.validation_loss, copy.deepcopy(model.state_dict()), 0, epoch
        else:
            stale += 1
            if stale >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result


def refit(data: Tensors, validation: Tensors, cardinalities: list[int], n_numeric: int,
          settings: DeviceSettings, config: TrainConfig, epochs: int,
          on_epoch: Callable[[EpochStats], None] | None = None,
          target_scale: tuple[float, float] | None = None) -> TrainResult:
    """Train from scratch on `data` (training and validation days) for the `epochs` early stopping
    chose. On little data this is most of the model's skill: five weeks leave one week to train on
    after a fortnight each of validation and holdout, and the refit triples it. Its "validation
    loss" is in-sample (`validation` is part of `data`): reported, never used to choose."""
    fixed = TrainConfig(**{**config.__dict__, "max_epochs": max(1, epochs)})
    return train(data, validation, cardinalities, n_numeric, settings, fixed, on_epoch, early_stopping=False,
                 target_scale=target_scale)


@dataclass
class FittedNetwork:
    pre: Preprocessor  # what the registered model applies: fitted on the rows it learned from
    model: TabularNet  # the refit model, or the early-stopped one without a refit
    stopped: TrainResult  # the early-stopped run: its history and the epochs it chose
    validation_probability: np.ndarray  # the early-stopped model on the validation days (honest)
    fitted_rows: int


def fit_network(split: TimeSplit, numeric: list[str], settings: DeviceSettings, config: TrainConfig,
                with_refit: bool = True, on_epoch: Callable[[EpochStats], None] | None = None,
                on_refit_epoch: Callable[[EpochStats], None] | None = None) -> FittedNetwork:
    """The model stage's training from a time split: early stopping on the validation days, scored
    there, then (`with_refit`) the refit on every day before the holdout. One function for the asset
    and the benchmarks, so that what they measure is what the platform registers."""
    def scale_of(rows) -> tuple[float, float] | None:
        if config.task == BINARY:
            return None
        y = target(config.task, rows[LABEL])
        return float(y.mean()), float(y.std()) or 1.0

    def tensors(pre: Preprocessor, part, scale) -> Tensors:
        y = target(config.task, part[LABEL])
        return Tensors.from_arrays(*pre.transform(part), y if scale is None else (y - scale[0]) / scale[1])

    pre = Preprocessor.fit(split.train, list(CATEGORICAL), numeric)
    scale = scale_of(split.train)
    validation = tensors(pre, split.validation, scale)
    stopped = train(tensors(pre, split.train, scale), validation, pre.cardinalities, pre.n_numeric_inputs, settings,
                    config, on_epoch, target_scale=scale)
    probability = predict(stopped.model, validation.categorical.numpy(), validation.numeric.numpy())
    if not with_refit:
        return FittedNetwork(pre, stopped.model, stopped, probability, len(split.train))
    rows = split.fitting_rows(with_validation=True)
    pre = Preprocessor.fit(rows, list(CATEGORICAL), numeric)
    scale = scale_of(rows)
    model = refit(tensors(pre, rows, scale), tensors(pre, split.validation, scale), pre.cardinalities,
                  pre.n_numeric_inputs, settings, config, stopped.best_epoch, on_refit_epoch, target_scale=scale).model
    return FittedNetwork(pre, model, stopped, probability, len(rows))


def predict(model: TabularNet, cats: np.ndarray, nums: np.ndarray, batch_size: int = 8192) -> np.ndarray:
    """The network's predictions on the CPU (evaluation and serving): a probability for a binary
    network, the target's value for a regression one."""
    # Moving and switching the model walk every module: only when needed (serving scores one row).
    if next(model.parameters()).device.type != "cpu":
        model = model.cpu()
    if model.training:
        model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(cats), batch_size):
            logits = model(torch.from_numpy(cats[start:start + batch_size]),
                           torch.from_numpy(nums[start:start + batch_size]))
            out.append(logits.float().numpy())
    raw = np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
    scale = model.config.get("target_scale")
    if scale:
        return (raw.astype(np.float64) * scale[1] + scale[0]).astype(np.float32)
    return (1.0 / (1.0 + np.exp(-raw.astype(np.float64)))).astype(np.float32)


predict_proba = predict  # a binary network's predictions are probabilities
