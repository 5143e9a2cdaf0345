"""The use case's model lines (`model.lines` in its spec): each a registered model with its own
training set, challenger, gate and champion, trained by the same code. A line with `same_day` also
reads the same-day features of the stream, as of `model_spec.same_day_lead_minutes` before the
event; each line's assets carry its `asset_prefix`, after the use case's namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlplatform.usecases import active
from mlplatform.state import StatePaths


@dataclass(frozen=True)
class ModelLine:
    model: str        # the MLflow registered model
    prefix: str       # of its asset keys: the use case's namespace, then the line's own prefix
    same_day: bool    # trained (and served) with the same-day features
    folder: str = ""  # of its training sets, below the use case's (its own prefix, for a second line)
    network: tuple[tuple[str, object], ...] = ()  # its own network settings (the spec's `network`)

    def settings(self, model_spec: dict) -> dict:
        """What this line trains by: the model spec's settings and the line's own network settings.
        A change to either is a change of the training inputs (`model/inputs.py`)."""
        return {**model_spec, "network": dict(self.network)} if self.network else model_spec

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def training_sets(self, paths: StatePaths) -> Path:
        return paths.training_sets / self.folder if self.folder else paths.training_sets


LINES = tuple(ModelLine(line.registered_model, active().key_prefix + line.asset_prefix, line.same_day,
                        line.asset_prefix.rstrip("_"), tuple(line.network.overrides().items()))
              for line in active().model.lines)
