"""The platform's model lines: each a registered model with its own training set, challenger,
gate and champion, trained by the same code.

    day-ahead  `flight_delay`: the features known the day before (the service `flight_delay_v1`)
    live       `flight_delay_live`: those, plus the same-day features of the departure stream as of
               `model_spec.same_day_lead_minutes` before the scheduled departure

The day-ahead line keeps the asset names it always had; the live line's assets are prefixed `live_`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlplatform.model.tracking import LIVE_MODEL, REGISTERED_MODEL
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


DAY_AHEAD = ModelLine(REGISTERED_MODEL, "", same_day=False)
LIVE = ModelLine(LIVE_MODEL, "live_", same_day=True)
LINES = (DAY_AHEAD, LIVE)
