"""The state directory: every file the platform writes at run time lives under one root.

`MLPLATFORM_HOME` names it (default: `.mlplatform/` in the checkout). Tests and benchmarks point it
at a temporary directory, so nothing outside it is ever written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "MLPLATFORM_HOME"

# platform/mlplatform/state.py -> the checkout root, when installed from a checkout (editable).
_CHECKOUT = Path(__file__).resolve().parents[2]


def project_root() -> Path:
    """The checkout holding dbt_project/ and feature_repo/ (or the working directory)."""
    if (_CHECKOUT / "workspace.yaml").exists():
        return _CHECKOUT
    return Path.cwd()


def default_home() -> Path:
    return project_root() / ".mlplatform"


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """An explicit home, else $MLPLATFORM_HOME, else `.mlplatform/` in the checkout."""
    if home:
        return Path(home).expanduser().resolve()
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return default_home()


@dataclass(frozen=True)
class StatePaths:
    """Where each stage keeps its state, below one home directory."""

    home: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> "StatePaths":
        return cls(resolve_home(home))

    @property
    def landing(self) -> Path:
        """Files as they arrive from the feed, one folder per table."""
        return self.home / "landing"

    @property
    def quarantine(self) -> Path:
        """Landing files that failed their contract, each with a `.reason.json` beside it."""
        return self.home / "quarantine"

    @property
    def lake(self) -> Path:
        """The raw lake: validated Parquet, one folder per table, one file per partition."""
        return self.home / "lake"

    @property
    def rejects(self) -> Path:
        """Rows that broke a row rule, with their reason, mirroring the lake's layout."""
        return self.home / "lake" / "_rejects"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse"

    @property
    def warehouse_db(self) -> Path:
        """The DuckDB file dbt builds (profiles.yml names the same path)."""
        return self.warehouse / "warehouse.duckdb"

    @property
    def exports(self) -> Path:
        """Parquet copies of the warehouse tables that other stages read."""
        return self.warehouse / "exports"

    @property
    def dbt_target(self) -> Path:
        """dbt's run artifacts and logs."""
        return self.home / "dbt"

    @property
    def feast(self) -> Path:
        return self.home / "feast"

    @property
    def training_sets(self) -> Path:
        """Training sets built through Feast, each with its manifest."""
        return self.home / "training_sets"

    @property
    def mlflow(self) -> Path:
        return self.home / "mlflow"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    def activate(self) -> "StatePaths":
        """Point MLPLATFORM_HOME at this directory for what reads it from the environment (dbt's
        profiles.yml and sources, Feast's feature_store.yaml), so they agree with this process."""
        os.environ[HOME_ENV] = str(self.home)
        return self

    def ensure(self) -> "StatePaths":
        for path in (self.landing, self.quarantine, self.lake, self.warehouse, self.feast,
                     self.mlflow, self.dagster_home):
            path.mkdir(parents=True, exist_ok=True)
        return self
