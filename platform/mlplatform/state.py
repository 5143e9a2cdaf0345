"""The state directory: every file the platform writes at run time lives under one root.

`MLPLATFORM_HOME` names it (default: `.mlplatform/` in the checkout). Tests and benchmarks point it
at a temporary directory, so nothing outside it is ever written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "MLPLATFORM_HOME"
MIN_FREE_ENV = "MLPLATFORM_MIN_FREE_MB"
# What a command that writes wants free before it starts: a day's build writes a few MB, a
# retrain tens (dbt's DuckDB spills to disk beyond its memory limit).
DEFAULT_MIN_FREE_MB = 200


class StateDirectoryError(RuntimeError):
    """The state directory cannot take the writes a command needs; the message says which and why."""

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
        """dbt's run artifacts and logs, the use case's own: each keeps its partial parse, which the
        other's variables would otherwise discard on every build."""
        return self.own / "dbt"

    @property
    def feast(self) -> Path:
        return self.home / "feast"

    @property
    def own(self) -> Path:
        """The folder of what the machinery keeps for the use case this process serves (its
        namespace's folder, or the root for the empty namespace): training sets, the stream's
        commits, deployments, answers, retrain decisions. What the use cases share stays at the
        root: landing, lake and warehouse (one folder per table), Feast, MLflow, Dagster."""
        from mlplatform.usecases import active

        return self.home / active().state_folder if active().state_folder else self.home

    @property
    def stream(self) -> Path:
        """The embedded topic of the same-day events and its consumer's commits."""
        return self.own / "stream"

    @property
    def training_sets(self) -> Path:
        """Training sets built through Feast, each with its manifest."""
        return self.own / "training_sets"

    @property
    def mlflow(self) -> Path:
        return self.home / "mlflow"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    def activate(self) -> "StatePaths":
        """Point MLPLATFORM_HOME at this directory for what reads it from the environment (dbt's
        profiles.yml and sources, Feast's feature_store.yaml), so they agree with this process; with
        it, the settings of the profile they read (the dbt target, the connections)."""
        from mlplatform.profile import current

        os.environ[HOME_ENV] = str(self.home)
        current().activate()
        return self

    def check_writable(self, min_free_mb: float | None = None) -> "StatePaths":
        """Fail early, naming the directory and the need, when it is read-only or nearly full: a
        command that cannot finish its writes should not start them."""
        import errno
        import shutil
        import uuid

        if min_free_mb is None:
            min_free_mb = float(os.environ.get(MIN_FREE_ENV, DEFAULT_MIN_FREE_MB))
        probe = self.home / f".write-probe-{uuid.uuid4().hex[:8]}"
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise StateDirectoryError(
                    f"the state directory {self.home} is not writable ({err.strerror}): the platform keeps its "
                    "landing zone, lake, warehouse, feature store, models and run records there. Make it "
                    f"writable, or point {HOME_ENV} at a writable directory") from None
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StateDirectoryError(f"the state directory {self.home} is full ({err.strerror}): free space "
                                          "and run the command again; nothing was changed") from None
            raise
        free_mb = shutil.disk_usage(self.home).free / 2**20
        if free_mb < min_free_mb:
            raise StateDirectoryError(
                f"the state directory {self.home} has {free_mb:.0f} MB free; this command needs at least "
                f"{min_free_mb:.0f} MB ({MIN_FREE_ENV}). Free space and run it again; nothing was changed")
        return self

    def ensure(self) -> "StatePaths":
        for path in (self.landing, self.quarantine, self.lake, self.warehouse, self.feast,
                     self.mlflow, self.dagster_home):
            path.mkdir(parents=True, exist_ok=True)
        return self
