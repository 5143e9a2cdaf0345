"""A use case's Dagster code location: every stage's assets, checks, jobs, sensors and resources, for the
use case this process serves (`mlplatform.usecases.active`; one location per use case:
`mlplatform.locations`)."""

from __future__ import annotations

import os

import dagster as dg

from mlplatform.assets.deployed import deployed_assets
from mlplatform.assets.monitoring import monitoring_assets
from mlplatform.automation.downstream import downstream_sensor
from mlplatform.automation.failures import run_failure_sensor
from mlplatform.automation.freshness import freshness_sensor, with_freshness
from mlplatform.automation.jobs import jobs
from mlplatform.automation.landing import landing_sensor
from mlplatform.automation.retrain import retrain_sensor
from mlplatform.assets.features import feature_assets, feature_checks
from mlplatform.assets.model import model_assets
from mlplatform.assets.raw import raw_assets
from mlplatform.assets.stream import stream_assets, stream_checks
from mlplatform.assets.transformed import dbt_assets_defs
from mlplatform.model.mlflow_resource import platform_mlflow
from mlplatform.profile import TRAINING_QUEUE_ENV
from mlplatform.resources import (
    ModelSpec, PlatformState, RawIngestPolicy, RetrainPolicy, StreamPolicy, TrainingDevice, settings_from_env,
)
from mlplatform.state import HOME_ENV
from mlplatform.usecases import active
from mlplatform.warehouse.project import dbt_cli_resource


# The same-day stream's assets, where the use case has a stream.
_STREAM = active().features.same_day_service is not None


def _state() -> PlatformState:
    # Read at run time from the environment when set; otherwise the default under the checkout.
    return PlatformState(home=dg.EnvVar(HOME_ENV)) if os.environ.get(HOME_ENV) else PlatformState()


defs = dg.Definitions(
    assets=with_freshness([*raw_assets, *dbt_assets_defs, *feature_assets, *model_assets, *deployed_assets,
                           *monitoring_assets, *(stream_assets if _STREAM else [])]),
    asset_checks=[*feature_checks, *(stream_checks if _STREAM else [])],
    jobs=jobs,
    sensors=[landing_sensor, downstream_sensor, retrain_sensor, run_failure_sensor, freshness_sensor],
    resources={
        "state": _state(),
        "raw_ingest": RawIngestPolicy(),
        "dbt": dbt_cli_resource(),
        "mlflow": platform_mlflow,
        # Settings from the environment: MLPLATFORM_MODEL_<FIELD>, MLPLATFORM_RETRAIN_<FIELD>.
        "model_spec": settings_from_env(ModelSpec, "MLPLATFORM_MODEL",
                                        **({"model_family": active().model.family} if active().model.family else {})),
        "retrain_policy": settings_from_env(RetrainPolicy, "MLPLATFORM_RETRAIN"),
        "stream_policy": settings_from_env(StreamPolicy, "MLPLATFORM_STREAM"),
        # MLPLATFORM_TRAINING_DEVICE, MLPLATFORM_TRAINING_CPU_THREADS; the queue is the Celery executor's.
        "training_device": settings_from_env(TrainingDevice, "MLPLATFORM_TRAINING",
                                             read_elsewhere=(TRAINING_QUEUE_ENV,)),
    },
)


def job_named(name: str) -> dg.JobDefinition:
    """A job of the code location, rebuilt by name in another process (`dg.build_reconstructable_job`)."""
    return defs.resolve_job_def(name)


def use_case_definitions(use_case) -> dg.Definitions:
    """The definitions of one use case (what its `UseCase` component builds): in its own process,
    as each code location of `mlplatform.locations` is."""
    from mlplatform.locations import definitions

    return definitions(use_case.name)
