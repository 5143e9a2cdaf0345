"""The use case's model lines (`model.lines` in its spec): each a registered model with its own
training set, challenger, gate and champion, trained by the same code. A line with `same_day` also
reads the same-day features of the stream, as of `model_spec.same_day_lead_minutes` before the
event; each line's assets carry its `asset_prefix`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlplatform.usecases import active
from mlplatform.state import StatePaths


@dataclass(frozen=True)
class ModelLine:
    model: str        # the MLflow registered model
    prefix: str       # of its asset keys
    same_day: bool    # trained (and served) with the same-day features

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def training_sets(self, paths: StatePaths) -> Path:
        return paths.training_sets if not self.prefix else paths.training_sets / self.prefix.rstrip("_")


LINES = tuple(ModelLine(line.registered_model, line.asset_prefix, line.same_day) for line in active().model.lines)
