"""MLflow for the platform: a tracking store (SQLite, or PostgreSQL in production) and an artifact
folder under MLPLATFORM_HOME, the registry's models of the use case and their aliases, and links to the
MLflow UI. Dagster's resource for it is in `mlflow_resource.py`; this module loads neither Dagster
nor MLflow until asked (`mlplatform status` reads the names and the store's existence).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlplatform.state import StatePaths
from mlplatform.usecases import active

if TYPE_CHECKING:
    import dagster as dg
    from mlflow import MlflowClient

_MODEL = active().model
EXPERIMENT = _MODEL.experiment
# The use case's model lines (`model.lines` in its spec): the first is the main one; a line trained
# with the same-day features too (the live model) has its own challenger, champion and gate.
REGISTERED_MODEL = _MODEL.lines[0].registered_model
LIVE_MODEL = next((line.registered_model for line in _MODEL.lines if line.same_day), None)
CHALLENGER, CHAMPION, PREVIOUS_CHAMPION = "challenger", "champion", "previous_champion"
SHADOW = "shadow"  # a gated challenger scoring beside the champion before promotion (model/shadow.py)


def tracking_uri(paths: StatePaths) -> str:
    """The tracking and registry store: SQLite under the state directory, or the production
    database's `mlflow` schema (mlplatform/profile.py)."""
    from mlplatform.profile import current

    return current().mlflow_uri(paths.mlflow)


UI_URL_ENV = "MLPLATFORM_MLFLOW_UI_URL"


def _ui_base() -> str:
    import os

    return os.environ.get(UI_URL_ENV, "http://127.0.0.1:5000").rstrip("/")


def run_link(experiment_id: str, run_id: str) -> dg.MetadataValue:
    """The run's page in the MLflow UI (`mlplatform mlflow-ui`; MLPLATFORM_MLFLOW_UI_URL where it
    runs elsewhere), as a link in the Dagster UI."""
    import dagster as dg

    return dg.MetadataValue.url(f"{_ui_base()}/#/experiments/{experiment_id}/runs/{run_id}")


def artifact_link(run_id: str, artifact_path: str) -> dg.MetadataValue:
    """One of the run's artifacts (a plot) served by the MLflow UI, as a link in the Dagster UI: the
    picture opens full size in its own tab instead of a small inline Markdown image."""
    from urllib.parse import urlencode

    import dagster as dg

    return dg.MetadataValue.url(f"{_ui_base()}/get-artifact?" + urlencode({"path": artifact_path, "run_uuid": run_id}))


def store_exists(paths: StatePaths) -> bool:
    """Whether the tracking store was created: asked before reading it, so a reader never creates
    an empty one. SQLite: its file exists; PostgreSQL: `mlplatform prepare` created its schema."""
    from mlplatform.profile import current

    return current().production or (paths.mlflow / "mlflow.db").exists()


def client(paths: StatePaths) -> MlflowClient:
    import mlflow

    paths.mlflow.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri(paths))
    mlflow.set_registry_uri(tracking_uri(paths))
    return mlflow.MlflowClient(tracking_uri(paths), registry_uri=tracking_uri(paths))


def ensure_experiment(paths: StatePaths, name: str = EXPERIMENT) -> str:
    """The experiment's id, creating it with its artifacts under the state directory."""
    tracker = client(paths)
    experiment = tracker.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifacts = paths.mlflow / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    return tracker.create_experiment(name, artifact_location=artifacts.as_uri())


def finish_run(failed: bool = False) -> None:
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.end_run(status="FAILED" if failed else "FINISHED")


def version_for_alias(paths: StatePaths, alias: str, model: str = REGISTERED_MODEL):
    """The registered version of `model` holding `alias`, or None when the model or the alias does
    not exist. A registry that cannot be read (its database gone) raises: taken for "no champion",
    it would let a challenger be promoted unopposed."""
    from mlflow.exceptions import MlflowException

    try:
        return client(paths).get_model_version_by_alias(model, alias)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def end_runs_of(paths: StatePaths, dagster_run_id: str) -> list[str]:
    """End, as FAILED, the MLflow runs a dead Dagster run left RUNNING; returns their ids."""
    tracker = client(paths)
    experiment = tracker.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    runs = tracker.search_runs([experiment.experiment_id], filter_string=(
        f"tags.dagster_run_id = '{dagster_run_id}' and attributes.status = 'RUNNING'"))
    for run in runs:
        tracker.set_terminated(run.info.run_id, status="FAILED")
    return [run.info.run_id for run in runs]
