"""dagster-mlflow's MLflow resource, wrapped for the platform.

Why wrapped: dagster-mlflow's `mlflow_tracking` reads a fixed tracking URI from config, lets MLflow
put a new experiment's artifacts under the working directory, and leaves ending the MLflow run to
its `end_mlflow_on_run_finished` hook, which ends it after whichever op it takes to be the last
(dagster issue 21872: with assets, runs end early or never). The wrapper points it at the state
directory, creates the experiment with its artifact location first, and the assets end their MLflow
run themselves (`tracking.finish_run`), successful or failed, instead of using the hook.

MLflow's active run is a per-thread global, and the resource starts one when a Dagster run begins.
A step that fails before its asset takes the run over (too little data, say), or one that never
executes, would leave it active, and the next Dagster run in the same process would log into it,
in another run's store ("Run with id=... not found"). So the resource ends, when the Dagster run
ends, whatever MLflow run is still active (KILLED: nothing finished it), and ends a leftover one
before it starts its own.
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

    _end_active_runs()
    paths: StatePaths = init_context.resources.state.paths
    ensure_experiment(paths)
    shim = SimpleNamespace(
        log=init_context.log, dagster_run=init_context.run, run_id=init_context.run.run_id,
        resource_config={"experiment_name": EXPERIMENT, "mlflow_tracking_uri": tracking_uri(paths),
                         "parent_run_id": None, "mlflow_run_id": None, "env": {}, "env_to_tag": None,
                         "extra_tags": {"platform": "mlplatform"}})
    try:
        yield MlFlow(shim)
    finally:
        _end_active_runs()


def _end_active_runs() -> None:
    """End every MLflow run still active in this thread, as KILLED. `end_run` forgets the run before
    it marks it in the store, so a store that is gone (a test's, long removed) cannot keep it active."""
    import contextlib

    import mlflow

    while mlflow.active_run() is not None:
        with contextlib.suppress(Exception):
            mlflow.end_run(status="KILLED")
