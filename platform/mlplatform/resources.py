"""Resources shared by the stages; their settings come from the environment (`EnvVar`)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from mlplatform.ingest.lake import Lake
from mlplatform.ingest.landing import LandingZone
from mlplatform.state import StatePaths


class PlatformState(dg.ConfigurableResource):
    """The state directory (`MLPLATFORM_HOME`) and the stores below it."""

    home: str | None = Field(
        default=None,
        description="State directory; unset means $MLPLATFORM_HOME, else .mlplatform/ in the checkout.")

    @property
    def paths(self) -> StatePaths:
        return StatePaths.resolve(self.home)

    @property
    def landing(self) -> LandingZone:
        return LandingZone(self.paths.landing, self.paths.quarantine)

    @property
    def lake(self) -> Lake:
        return Lake(self.paths.lake)

    @property
    def exports(self) -> Lake:
        """The warehouse's Parquet exports, laid out like the lake."""
        return Lake(self.paths.exports)


class RawIngestPolicy(dg.ConfigurableResource):
    """How strict the raw stage is with rows that break a row rule."""

    max_reject_share: float = Field(
        default=0.05, ge=0.0, le=1.0,
        description="Largest share of a file's rows that may break row rules before the file is quarantined.")
