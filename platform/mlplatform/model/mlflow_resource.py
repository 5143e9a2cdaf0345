"""dagster-mlflow's MLflow resource, wrapped for the platform.

Why wrapped: dagster-mlflow's `mlflow_tracking` reads a fixed tracking URI from config, lets MLflow
put a new experiment's artifacts under the working directory, and leaves ending the MLflow run to
its `end_mlflow_on_run_finished` hook, which ends it after whichever op it takes to be the last
(dagster issue 21872: with assets, runs end early or never). The wrapper points it at the state
directory, creates the experiment with its artifact location first, and the assets end their MLflow
run themselves (`tracking.finish_run`), successful or failed, instead of using the hook.
"""

from __future__ import annotations

from types import SimpleNamespace

import dagster as dg

from mlplatform.model.tracking import EXPERIMENT, ensure_experiment, tracking_uri
from mlplatform.state import StatePaths


@dg.resource(required_resource_keys={"state"},
             description="dagster-mlflow's MLflow resource against MLPLATFORM_HOME's tracking store: one "
                         "MLflow run per Dagster run, tagged with the Dagster run id.")
def platform_mlflow(init_context: dg.InitResourceContext):
    from dagster_mlflow.resources import MlFlow

    paths: StatePaths = init_context.resources.state.paths
    ensure_experiment(paths)
    shim = SimpleNamespace(
        log=init_context.log, dagster_run=init_context.run, run_id=init_context.run.run_id,
        resource_config={"experiment_name": EXPERIMENT, "mlflow_tracking_uri": tracking_uri(paths),
                         "parent_run_id": None, "mlflow_run_id": None, "env": {}, "env_to_tag": None,
                         "extra_tags": {"platform": "mlplatform"}})
    return MlFlow(shim)
