"""Model stage: the PyTorch network trained on the Feast training set, tracked and registered in
MLflow (the line's registered model, alias `challenger`), then evaluated against baselines and the champion on
the most recent days; the blocking check `challenger_beats_champion` is the deployment gate.
The same assets, prefixed `live_`, train, gate and deploy the live model (`model/lines.py`).

torch and mlflow are imported when these assets run, not when the code location loads.
"""

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from mlplatform.features.service import LABEL
from mlplatform.features.training import latest_manifest
from mlplatform.faults import crash_point
from mlplatform.profile import current as current_profile
from mlplatform.model.inputs import INPUTS_TAG, training_inputs
from mlplatform.model.lines import LINES, ModelLine
from mlplatform.assets.ui import keyed_table, table as ui_table
from mlplatform.model.tracking import (
    CHALLENGER, CHAMPION, REGISTERED_MODEL, artifact_link, finish_run, run_link, version_for_alias,
)
from mlplatform.resources import ModelSpec, PlatformState, TrainingDevice
from mlplatform.usecases import active

if TYPE_CHECKING:  # PyTorch is imported by the steps that train, not by the code location
    from mlplatform.ml.train import TrainConfig

GROUP = "model"
GATE = "challenger_beats_champion"
FAMILY_TAG = "model_family"  # on the run and the model version: network, gradient_boosting or blend
# The run's plots (MLflow artifacts), linked from the Dagster metadata.
LOSS_CURVES, ROC_PLOT, CALIBRATION_PLOT = "plots/loss_curves.png", "plots/roc_holdout.png", "plots/calibration_holdout.png"
PREDICTED_PLOT, RESIDUALS_PLOT = "plots/predicted_vs_actual_holdout.png", "plots/residuals_holdout.png"
GPU_POOL = "gpu"
# Which rows the registered model learned from (an MLflow param): the evaluation fits the
# baselines on the same ones.
FITTED_ON_PARAM = "fitted_on"
FITTED_ON_ALL, FITTED_ON_TRAIN = "train+validation", "train"
# On Kubernetes (dagster-k8s), the training step's pod asks for one GPU; on Celery workers, the
# training step goes to the profile's training queue (a GPU worker's, in deploy/k8s/workers.yaml).
TRAINING_STEP_TAGS = {"dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}},
                      "dagster-celery/queue": current_profile().training_queue}


def load_split(spec: ModelSpec, manifest: dict):
    """The training set's numeric inputs and its split in time. The splits are copies: the whole
    set is let go here, which is a training set's worth of memory during training."""
    import pandas as pd

    from mlplatform.ml.columns import numeric_inputs, require_inputs
    from mlplatform.ml.split import split_by_time

    frame = pd.read_parquet(manifest["path"])
    require_inputs(frame)
    return numeric_inputs(frame), split_by_time(frame, holdout_days=spec.holdout_days,
                                                validation_days=spec.validation_days,
                                                holdout_first_day=spec.holdout_first_day,
                                                label_delay_days=active().prediction.label_delay_days)


def network_config(model_spec: ModelSpec, line: ModelLine, task: str) -> "TrainConfig":
    """The network's training settings for `line`: the platform's, then the line's own."""
    from mlplatform.ml.train import TrainConfig

    return TrainConfig(**{"max_epochs": model_spec.max_epochs, "patience": model_spec.patience,
                          "learning_rate": model_spec.learning_rate, "seed": model_spec.seed, "task": task,
                          **dict(line.network)})


def _train(context: dg.AssetExecutionContext, line: ModelLine) -> dg.MaterializeResult:
    import mlflow
    import numpy as np

    from mlplatform.ml.columns import CATEGORICAL
    from mlplatform.ml.device import DeviceUnavailable, select_device
    from mlplatform.ml.split import NotEnoughData, require_trainable
    from mlplatform.ml.boosting import BoostingConfig
    from mlplatform.ml.bundle import NETWORK
    from mlplatform.ml.candidates import fit_candidates, parts_of, registered, validation_table
    from mlplatform.ml.task import VALIDATION_METRICS
    from mlplatform.ml.train import TrainingDiverged
    from mlplatform.model import plots

    state: PlatformState = context.resources.state
    model_spec: ModelSpec = context.resources.model_spec
    training_device: TrainingDevice = context.resources.training_device
    paths = state.paths
    task = active().task.kind
    manifest = latest_manifest(line.training_sets(paths))
    if manifest is None:
        raise dg.Failure(f"no training set yet: materialize `{line.key('training_set')}` first", allow_retries=False)
    try:
        numeric, split = load_split(model_spec, manifest)
        require_trainable(split.train, LABEL, "training split", model_spec.min_train_rows, task=task)
        require_trainable(split.validation, LABEL, "validation split", 10, task=task)
        settings = select_device(training_device.device, batch_size=model_spec.batch_size,
                                 cpu_threads=training_device.cpu_threads)
    except (NotEnoughData, DeviceUnavailable) as err:
        raise dg.Failure(f"nothing trained or registered: {err}", allow_retries=False) from None

    try:
        families = parts_of(model_spec.model_family)
    except ValueError as err:
        raise dg.Failure(f"nothing trained or registered: {err}", allow_retries=False) from None
    config = network_config(model_spec, line, task)
    boosting_config = BoostingConfig(seed=model_spec.seed, task=task)
    fitted_on = FITTED_ON_ALL if model_spec.refit else FITTED_ON_TRAIN
    mlf = context.resources.mlflow
    run_id, experiment_id = mlflow.active_run().info.run_id, mlflow.active_run().info.experiment_id
    try:
        mlf.log_params({**{f"train_{k}": v for k, v in config.__dict__.items()}, "device": settings.name,
                        **{f"boosting_{k}": v for k, v in boosting_config.__dict__.items()},
                        "model_family": model_spec.model_family,
                        "batch_size": settings.batch_size, "threads": settings.threads,
                        "categorical": ",".join(CATEGORICAL), "numeric_features": len(numeric),
                        **{f"split_{k}": v for k, v in split.describe().items()},
                        "holdout_first_day": split.holdout_first_day, FITTED_ON_PARAM: fitted_on,
                        "same_day_lead_minutes": manifest.get("same_day_lead_minutes", "none")})
        inputs = training_inputs(state.exports, line.settings(model_spec.model_dump()))
        mlflow.set_tags({INPUTS_TAG: inputs, "training_set_content_hash": manifest["content_hash"],
                         "training_set_manifest": str(Path(manifest["path"]).with_name("manifest.json")),
                         "training_window": f"{manifest['window']['first_day']}..{manifest['window']['last_day']}",
                         # The last day trained on, as its own value: what the retrain decision counts from.
                         "trained_through": manifest["window"]["last_day"],
                         "feature_service": manifest["feature_service"],
                         "feature_service_version": manifest["feature_service_version"],
                         "feature_definitions_hash": manifest["feature_definitions_hash"],
                         "dbt_code_version": manifest["dbt_code_version"],
                         "raw_partitions": f"{manifest['partitions'][0]}..{manifest['partitions'][-1]} "
                                           f"({manifest['days']} days)",
                         "dagster_asset": line.key("trained_model"), "registered_model": line.model})
        mlflow.log_input(mlflow.data.from_pandas(split.train.head(1000), source=manifest["path"], name="training_set",
                                                 targets=LABEL, digest=manifest["content_hash"][:16]),
                         context="training")

        def on_epoch(stats) -> None:
            context.log.info(f"epoch {stats.epoch}: train loss {stats.train_loss:.4f}, validation loss "
                             f"{stats.validation_loss:.4f}, {stats.samples_per_second:,.0f} samples/s")
            mlflow.log_metrics({"train_loss": stats.train_loss, "validation_loss": stats.validation_loss,
                                "samples_per_second": stats.samples_per_second}, step=stats.epoch)
            crash_point("training")  # the MLflow run is RUNNING, the model not registered

        def on_refit_epoch(stats) -> None:
            context.log.info(f"refit epoch {stats.epoch}: train loss {stats.train_loss:.4f}")
            mlflow.log_metrics({"refit_train_loss": stats.train_loss}, step=stats.epoch)

        candidates = fit_candidates(split, numeric, families, settings=settings, train_config=config,
                                    boosting_config=boosting_config, with_refit=model_spec.refit,
                                    on_epoch=on_epoch, on_refit_epoch=on_refit_epoch)
        chosen = registered(candidates, model_spec.model_family, task)
        for candidate in candidates:
            mlflow.log_metrics({**{f"validation_{k}_{candidate.family}": candidate.validation[k]
                                   for k in VALIDATION_METRICS[task]},
                                f"fit_seconds_{candidate.family}": candidate.fit_seconds})
        # The registered model's validation figures: its family's early-stopped model, before the
        # refit sees those days.
        val_scores = chosen.validation
        mlflow.log_metrics({f"validation_{k}": v for k, v in val_scores.items()})
        mlflow.set_tag(FAMILY_TAG, chosen.family)
        context.log.info(f"registering the {chosen.family}: " + "; ".join(
            f"{c.family} validation " + ", ".join(f"{k} {c.validation[k]:.4f}" for k in VALIDATION_METRICS[task])
            for c in candidates))
        network = next((c for c in candidates if c.family == NETWORK), None)
        curves = None
        if network is not None:
            stopped = network.stopped
            curves = plots.loss_curves([h.train_loss for h in stopped.history],
                                       [h.validation_loss for h in stopped.history], stopped.best_epoch)
            mlflow.log_image(_image(curves), LOSS_CURVES)
        version = _register(paths, chosen.trained, split.validation.head(5), run_id, line.model, inputs)
    except TrainingDiverged as err:
        finish_run(failed=True)
        raise dg.Failure(f"nothing registered: {err}", allow_retries=False) from None
    except Exception:
        finish_run(failed=True)
        raise
    finish_run()
    extra: dict[str, Any] = {}
    if network is not None:
        extra = {**network.details, "samples_per_second": round(float(np.median(
            [h.samples_per_second for h in network.stopped.history]))),
            "loss_curves": plots.in_ui(curves, "Loss"), "loss_curves_in_mlflow": artifact_link(run_id, LOSS_CURVES)}
    return dg.MaterializeResult(metadata={
        "registered_model": line.model, "model_version": int(version.version), "alias": CHALLENGER,
        "model_family": chosen.family, "mlflow_run_id": run_id, "mlflow_run": run_link(experiment_id, run_id),
        "device": settings.name,
        "candidates": keyed_table(validation_table(candidates, task), "family"),
        "fitted_on": f"{fitted_on} ({chosen.fitted_rows} rows)",
        **{f"validation_{k}": round(val_scores[k], 4) for k in VALIDATION_METRICS[task]},
        "training_set_content_hash": manifest["content_hash"], "split": split.describe(), **extra,
    })


def _image(png: bytes):
    import io

    from PIL import Image

    return Image.open(io.BytesIO(png))


def _register(paths, trained, example, run_id: str, registered_model: str, fingerprint: str):
    """Log the pyfunc (preprocessing and the fitted network or boosting model) and register it as the
    challenger, tagged with its family."""
    import mlflow
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    from mlplatform.ml.bundle import save_bundle
    from mlplatform.ml.columns import CATEGORICAL
    from mlplatform.model.pyfunc import UseCaseModel
    from mlplatform.model.tracking import client

    pre = trained.pre
    inputs = example[[c for c in [*CATEGORICAL, *pre.numeric] if c in example.columns]].reset_index(drop=True)
    # The signature names every input, all optional: the preprocessing scores missing ones as missing,
    # and a numeric feature arrives as int64 one day and float64 (with NaN) the next, so its type is
    # left open rather than enforced by MLflow.
    signature = ModelSignature(
        inputs=Schema([ColSpec("string", c, required=False) for c in CATEGORICAL if c in inputs.columns]
                      + [ColSpec(AnyType(), c, required=False) for c in pre.numeric]),
        outputs=infer_signature(inputs, trained.score(inputs)).outputs)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = save_bundle(Path(tmp) / "bundle", trained)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=UseCaseModel(), artifacts={"bundle": str(bundle)},
            signature=signature, input_example=inputs,
            registered_model_name=registered_model,
            pip_requirements=["mlplatform", "torch==2.13.0", "scikit-learn", "pandas", "numpy", "mlflow"])
    tracker = client(paths)
    version = tracker.get_model_version(registered_model, info.registered_model_version)
    tracker.set_registered_model_alias(registered_model, CHALLENGER, version.version)
    tracker.set_model_version_tag(registered_model, version.version, "mlflow_run_id", run_id)
    tracker.set_model_version_tag(registered_model, version.version, FAMILY_TAG, trained.family)
    tracker.set_model_version_tag(registered_model, version.version, INPUTS_TAG, fingerprint)
    return version


def gate_settings(model_spec: ModelSpec, task=None):
    """The gate (`ml/gate.py`) on the use case's metric: the model spec's floor and tolerance (for a
    binary task judged by ROC AUC the floor is `min_first_auc`), else the floor the use case's spec sets."""
    from mlplatform.ml.gate import GateSettings

    task = task or active().task
    floor = model_spec.min_first_auc if task.kind == "binary" and task.metric == "roc_auc" else task.min_metric
    # The spec's tolerance is in its metric's units; `gate_tolerance` overrides it when set (env, launchpad).
    tolerance = model_spec.gate_tolerance if "gate_tolerance" in model_spec.model_fields_set else task.tolerance
    return GateSettings(metric=task.metric, floor=floor, tolerance=tolerance,
                        against_baselines=model_spec.gate_against_baselines,
                        floor_name="min_first_auc" if task.kind == "binary" else "min_metric")


def _evaluate(context: dg.AssetExecutionContext, state: PlatformState, model_spec: ModelSpec,
              line: ModelLine) -> dg.MaterializeResult:
    import mlflow

    from mlplatform.ml.columns import CATEGORICAL
    from mlplatform.ml.evaluate import baselines, calibration, regression_baselines
    from mlplatform.ml.gate import gate as gate_policy
    from mlplatform.ml.preprocess import Preprocessor
    from mlplatform.ml.split import NotEnoughData, require_trainable
    from mlplatform.ml.task import BINARY, best, metrics, target
    from mlplatform.model import plots
    from mlplatform.model.tracking import client

    task = active().task.kind
    settings = gate_settings(model_spec)
    metric = settings.metric
    paths = state.paths
    tracker = client(paths)
    challenger = version_for_alias(paths, CHALLENGER, line.model)
    if challenger is None:
        raise dg.Failure(f"no challenger registered: materialize `{line.key('trained_model')}` first",
                         allow_retries=False)
    run = tracker.get_run(challenger.run_id)
    manifest = json.loads(Path(run.data.tags["training_set_manifest"]).read_text())
    spec = model_spec.model_copy(update={"holdout_first_day": run.data.params["holdout_first_day"]})
    numeric, split = load_split(spec, manifest)
    try:
        require_trainable(split.holdout, LABEL, "holdout", 10, task=task)
    except NotEnoughData as err:
        raise dg.Failure(f"cannot evaluate: {err}", allow_retries=False) from None
    label = target(task, split.holdout[LABEL])

    scores = {"challenger": mlflow.pyfunc.load_model(f"models:/{line.model}@{CHALLENGER}").predict(split.holdout)}
    champion = version_for_alias(paths, CHAMPION, line.model)
    if champion is not None and champion.version != challenger.version:
        scores["champion"] = mlflow.pyfunc.load_model(f"models:/{line.model}@{CHAMPION}").predict(split.holdout)
    # The baselines learn from the rows the challenger learned from, all of them: opponents, not
    # yardsticks (a sample would make them weaker than they are).
    fitted = split.fitting_rows(with_validation=run.data.params.get(FITTED_ON_PARAM) == FITTED_ON_ALL)
    pre = Preprocessor.fit(fitted, list(CATEGORICAL), numeric)
    fitting_inputs = (*pre.transform(fitted), target(task, fitted[LABEL]))
    holdout_inputs, described, fitted_rows = pre.transform(split.holdout), split.describe(), len(fitted)
    # The frames are let go before the baselines fit: they are the step's largest holding, and the
    # fits' own arrays, the step's peak, can then reuse their memory.
    del fitted, split
    opponents, baseline_seconds = (baselines if task == BINARY else regression_baselines), {}
    scores.update(opponents(pre, fitting_inputs, holdout_inputs, seed=model_spec.seed, seconds=baseline_seconds))

    figures = {name: metrics(task, label, p) for name, p in scores.items()}
    bins = ({name: calibration(label, scores[name]) for name in ("challenger", "champion") if name in scores}
            if task == BINARY else {})
    rivals = {name: values for name, values in figures.items() if name not in ("challenger", "champion")}
    passed, reason = gate_policy(task, figures["challenger"], rivals, figures.get("champion"), settings)
    best_on_holdout = best(metric, {n: f for n, f in figures.items() if n != "base_rate"})

    for name, values in figures.items():
        for figure, value in values.items():
            tracker.log_metric(challenger.run_id, f"holdout_{name}_{figure}", value)
    for name, value in baseline_seconds.items():
        tracker.log_metric(challenger.run_id, f"fit_seconds_{name}", value)
    tracker.set_tag(challenger.run_id, "gate", "passed" if passed else "failed")
    tracker.set_tag(challenger.run_id, "gate_reason", reason)
    tracker.set_model_version_tag(line.model, challenger.version, "gate", "passed" if passed else "failed")
    tracker.set_model_version_tag(line.model, challenger.version, "gate_reason", reason[:4000])
    if task == BINARY:
        pictures = {"roc": (ROC_PLOT, plots.roc_curves(label, scores)),
                    "calibration_plot": (CALIBRATION_PLOT, plots.calibration_plot(bins))}
    else:
        pictures = {"predicted_vs_actual": (PREDICTED_PLOT, plots.predicted_vs_actual(label, scores)),
                    "residuals": (RESIDUALS_PLOT, plots.residuals(label, scores))}
    for artifact, png in pictures.values():
        tracker.log_image(challenger.run_id, _image(png), artifact)
    context.log.info(f"gate {'passed' if passed else 'failed'}: {reason}")

    table = {name: {k: round(v, 4) for k, v in values.items() if k != "rows"} for name, values in figures.items()}
    champion_figure = figures["champion"][metric] if "champion" in figures else "none"
    evidence: dict[str, Any] = {"registered_model": line.model, "challenger_version": int(challenger.version),
                                "champion_version": int(champion.version) if "champion" in scores else "none",
                                "reason": reason, "metric": metric, "tolerance": model_spec.gate_tolerance,
                                "best_on_holdout": best_on_holdout,
                                "challenger_family": run.data.tags.get(FAMILY_TAG, "network"),
                                "baselines_fitted_on": f"{fitted_rows} rows",
                                # What each opponent cost to fit and score, beside what it scored.
                                "baselines_fit_seconds": {k: round(v, 1) for k, v in baseline_seconds.items()}}
    return dg.MaterializeResult(
        # What a reader wants first comes first: the verdict, the figures beside the opponents', the plots.
        metadata={"reason": reason, f"challenger_{metric}": round(figures["challenger"][metric], 4),
                  "metrics": keyed_table(table, "model"),
                  **{name: plots.in_ui(png, name.replace("_", " ")) for name, (_, png) in pictures.items()},
                  **{f"{name}_in_mlflow": artifact_link(challenger.run_id, artifact)
                     for name, (artifact, _) in pictures.items()},
                  **evidence, "holdout": f"{described['holdout']} ({len(label)} rows)",
                  # Each opponent's figure at the top level too: the Plots tab charts them run by run.
                  **{f"{name}_{metric}": values[metric] for name, values in table.items() if name != "challenger"},
                  **({"calibration": ui_table({"model": name, **row} for name, rows in bins.items() for row in rows)}
                     if bins else {}),
                  "mlflow_run_id": challenger.run_id},
        check_results=[dg.AssetCheckResult(check_name=GATE, asset_key=line.key("model_evaluation"),
                                           passed=passed, severity=dg.AssetCheckSeverity.WARN, metadata={
            **evidence, f"challenger_{metric}": figures["challenger"][metric], f"champion_{metric}": champion_figure,
            **{f"{name}_{metric}": values[metric] for name, values in rivals.items()},
            **({"challenger_log_loss": figures["challenger"]["log_loss"]} if task == BINARY else {})})],
    )


def _shadow_step(context: dg.AssetExecutionContext, state: PlatformState,
                 model_spec: ModelSpec) -> dg.MaterializeResult | None:
    """The shadow's part of a deployment (model/shadow.py): a newly gated challenger goes into shadow;
    the one in shadow waits for its days, or is retired. None: promote as usual (no champion yet, or
    the shadow held up)."""
    from mlplatform.model import shadow
    from mlplatform.model.deployment import record

    paths = state.paths
    challenger = version_for_alias(paths, CHALLENGER)
    champion = version_for_alias(paths, CHAMPION)
    if challenger is None or champion is None or challenger.version == champion.version \
            or challenger.tags.get("gate") != "passed":
        return None  # the first champion never waits; the rest is promote_challenger's to refuse
    if challenger.tags.get("shadow_outcome") == "retired":  # a rerun of this asset starts no second shadow run
        return dg.MaterializeResult(metadata={"registered_model": REGISTERED_MODEL, "action": "shadow_retired",
                                              "champion_version": int(champion.version),
                                              "shadow_version": int(challenger.version),
                                              "reason": "retired after its shadow run; the next retrain brings a new challenger"})
    held = shadow.current(paths)
    common = {"registered_model": REGISTERED_MODEL, "champion_version": int(champion.version),
              "shadow_version": int(challenger.version), "shadow_days_required": model_spec.shadow_days}
    if held is None or held.version != challenger.version:
        shadow.start(paths, challenger.version)
        # The log is the sequence of champions: `version` stays the champion's.
        entry = record(paths, {"action": "shadow", "version": int(champion.version),
                               "previous_version": int(champion.version), "shadow_version": int(challenger.version),
                               "dagster_run_id": context.run.run_id})
        context.log.info(f"version {challenger.version} in shadow beside champion {champion.version} for "
                         f"{model_spec.shadow_days} scored day(s)")
        return dg.MaterializeResult(metadata={**common, "action": "shadow", "at": entry["at"]})
    found = shadow.results(state.exports, int(challenger.version))
    outcome, why = shadow.verdict(found, model_spec.shadow_days, gate_settings(model_spec).tolerance)
    context.log.info(f"shadow version {challenger.version}: {outcome}: {why}")
    metric = found.metric
    figures = {"shadow_days_scored": len(found.days), "shadow_rows": found.rows,
               f"shadow_{metric}": round(found.shadow_metric, 4) if found.shadow_metric is not None else "none",
               f"champion_{metric}_same_rows": (round(found.champion_metric, 4)
                                                if found.champion_metric is not None else "none"),
               "reason": why}
    if outcome == "promote":
        shadow.end(paths, challenger.version, "promoted")
        return None
    if outcome == "retire":
        shadow.end(paths, challenger.version, "retired")
        record(paths, {"action": "shadow_retired", "version": int(champion.version),
                       "previous_version": int(champion.version), "shadow_version": int(challenger.version),
                       "reason": why, "dagster_run_id": context.run.run_id})
    return dg.MaterializeResult(metadata={**common, **figures, "action": "shadow_retired" if outcome == "retire"
                                          else "in_shadow"})


def _refused(context: dg.AssetExecutionContext, state: PlatformState, line: ModelLine) -> dg.MaterializeResult | None:
    """A challenger the gate refused: the decision, recorded (the champion stays). None otherwise."""
    challenger = version_for_alias(state.paths, CHALLENGER, line.model)
    if challenger is None or challenger.tags.get("gate") != "failed":
        return None
    champion = version_for_alias(state.paths, CHAMPION, line.model)
    reason = challenger.tags.get("gate_reason", "the gate refused it")
    context.log.warning(f"{line.model} version {challenger.version} not deployed: {reason}")
    return dg.MaterializeResult(metadata={
        "registered_model": line.model, "action": "refused", "challenger_version": int(challenger.version),
        **({"champion_version": int(champion.version)} if champion is not None else {}),
        "reason": f"not deployed: {reason}"})


def _deploy(context: dg.AssetExecutionContext, state: PlatformState, line: ModelLine) -> dg.MaterializeResult:
    from mlplatform.model.deployment import DeploymentError, promote_challenger

    try:
        entry = promote_challenger(state.paths, dagster_run_id=context.run.run_id, model=line.model)
    except DeploymentError as err:
        raise dg.Failure(str(err), allow_retries=False) from None
    context.log.info(f"{line.model} champion: version {entry['version']} ({entry['action']}), "
                     f"previous {entry['previous_version']}")
    lineage = entry["lineage"]
    return dg.MaterializeResult(metadata={
        "registered_model": line.model, "action": entry["action"], "champion_version": entry["version"],
        "previous_champion_version": entry["previous_version"] or "none",
        "holdout_roc_auc": round(lineage["holdout"].get("roc_auc", float("nan")), 4),
        "evaluation": ui_table([lineage["holdout"]]),
        "lineage": ui_table({"of": k, "value": v} for k, v in lineage.items() if k != "holdout"),
    })


def model_line_assets(line: ModelLine) -> list[dg.AssetsDefinition]:
    """Training, the gate and the deployment of one model line (`model/lines.py`)."""
    features = ("day-ahead features" if not line.same_day else
                "day-ahead features and the same-day features as of `same_day_lead_minutes` before the request time")

    @dg.asset(
        name=line.key("trained_model"),
        group_name=GROUP,
        kinds={"pytorch", "scikitlearn", "mlflow"},
        deps=[line.key("training_set")],
        pool=GPU_POOL,
        op_tags=TRAINING_STEP_TAGS,
        # dagster-mlflow's resource is a legacy one, which cannot be mixed with typed resource
        # parameters: every resource comes through the context here.
        required_resource_keys={"mlflow", "state", "model_spec", "training_device"},
        description=f"A model on the {features}: by default the blend of a tabular network (embeddings for "
                    "the categorical inputs; standardized numeric features with missing "
                    "flags) and HistGradientBoosting on the same inputs, each stopped early on a later-in-time "
                    "validation split, then refit (`model_spec.model_family`: network, gradient_boosting or "
                    f"blend). Logged to MLflow and registered as a new `{line.model}` version aliased "
                    "`challenger`, preprocessing included; the metadata compares the parts on the validation days.",
    )
    def trained_model(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from mlplatform.ml.device import limited_threads

        with limited_threads(context.resources.training_device.cpu_threads):
            return _train(context, line)

    @dg.asset(
        name=line.key("model_evaluation"),
        group_name=GROUP,
        kinds={"scikitlearn", "mlflow"},
        deps=[trained_model],
        # Not blocking: a refused challenger is a decision, recorded by `deployed_model` (which never
        # deploys a version whose gate did not pass), not a failed run that alerts.
        check_specs=[dg.AssetCheckSpec(GATE, asset=line.key("model_evaluation"),
                                       description="The deployment gate, on the holdout: the challenger beats the "
                                                   "best baseline (fitted on the same rows) on the use case's metric "
                                                   "and reaches its floor, (binary) its log loss beats the base "
                                                   "rate's, and it is at most the tolerance worse than the champion. "
                                                   "WARN when it refuses the challenger.")],
        description=f"The `{line.model}` challenger scored on the holdout (the most recent days, never trained "
                    "on) beside the base rate, logistic regression, HistGradientBoosting and the current champion, "
                    "on the same rows: ROC AUC, PR AUC, log loss, Brier score, calibration.",
    )
    def model_evaluation(context: dg.AssetExecutionContext, state: PlatformState, model_spec: ModelSpec,
                         training_device: TrainingDevice) -> dg.MaterializeResult:
        from mlplatform.ml.device import limited_threads

        with limited_threads(training_device.cpu_threads):  # the baselines are fitted here
            return _evaluate(context, state, model_spec, line)

    @dg.asset(
        name=line.key("deployed_model"),
        group_name="deployed",
        kinds={"mlflow"},
        deps=[model_evaluation],
        description=f"The `{line.model}` champion: the MLflow alias `champion` moved to the challenger that "
                    "passed the gate, the version it replaces kept as `previous_champion` (rollback puts it "
                    "back). Records the deployment with its evaluation figures and lineage. With "
                    "model_spec.shadow_days, the day-ahead challenger first runs in shadow (model/shadow.py).",
    )
    def deployed_model(context: dg.AssetExecutionContext, state: PlatformState,
                       model_spec: ModelSpec) -> dg.MaterializeResult:
        refused = _refused(context, state, line)
        if refused is not None:
            return refused
        if line.model == REGISTERED_MODEL and model_spec.shadow_days > 0:
            shadowed = _shadow_step(context, state, model_spec)
            if shadowed is not None:
                return shadowed
        return _deploy(context, state, line)

    return [trained_model, model_evaluation, deployed_model]


model_assets = [asset for line in LINES for asset in model_line_assets(line)]
