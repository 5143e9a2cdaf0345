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


class ModelSpec(dg.ConfigurableResource):
    """How the model stage splits, trains and gates: shared by training and evaluation."""

    holdout_days: int = Field(default=14, ge=1, description="The most recent days, never trained on, scored by the evaluation.")
    holdout_first_day: str | None = Field(default=None, description="Or the holdout's first day (YYYY-MM-DD).")
    validation_days: int | None = Field(
        default=None, ge=1,
        description="Days before the holdout used for early stopping. Unset: 14, or 28 once half a year "
                    "of days lies before the holdout (ml/split.py: validation_days_for).")
    min_train_rows: int = Field(default=1000, ge=10, description="Fewer training rows than this is an error.")
    min_train_days: int = Field(default=7, ge=1, description="The retrain sensor waits for this many days "
                                                             "before the validation days to train on.")
    max_epochs: int = Field(default=30, ge=1)
    patience: int = Field(default=3, ge=1, description="Epochs without validation improvement before stopping.")
    learning_rate: float = Field(default=2e-3, gt=0)
    batch_size: int = Field(default=1024, ge=2, description="On CUDA, four times this.")
    seed: int = 13
    gate_tolerance: float = Field(
        default=0.005, ge=0,
        description="The challenger passes the gate when its holdout ROC AUC is at least the champion's "
                    "minus this (retraining on new days should not be blocked by noise).")
    min_first_auc: float = Field(default=0.55, description="The ROC AUC every challenger must reach, beside "
                                                           "beating the best baseline and the base rate's log loss.")
    gate_against_baselines: bool = Field(
        default=True,
        description="The gate requires the challenger to beat the best baseline's ROC AUC and the base rate's "
                    "log loss. Turned off, both are still reported in the gate's reason, not required (for "
                    "runs on a few days where the model's quality is not the point).")
    shadow_days: int = Field(
        default=0, ge=0,
        description="0: a day-ahead challenger that passes its gate becomes champion at once. N: with a champion in "
                    "place, it first runs in shadow (registry alias `shadow`), scoring the daily batches and the "
                    "API's requests beside the champion, logged but not returned, and is promoted once N scored "
                    "days are labeled if its realized ROC AUC on them is no worse than the champion's on the same "
                    "rows (within gate_tolerance); otherwise it is retired (model/shadow.py).")
    refit: bool = Field(
        default=True,
        description="After early stopping picks the epochs on the validation days, train again from scratch "
                    "on training and validation days together for that many epochs: the registered model "
                    "learns from every day before the holdout (the baselines learn from the same rows).")
    max_training_rows: int = Field(
        default=1_000_000, ge=100,
        description="A training set holds at most this many labeled rows of its window, a seeded uniform "
                    "sample beyond that, so its time and memory stay bounded as data grows (docs/benchmarks.md "
                    "gives the demo's sizes).")
    model_family: str = Field(
        default="blend",
        description="What the training asset registers: `network` (PyTorch), `gradient_boosting` (scikit-learn "
                    "HistGradientBoosting on the same inputs), `linear` (logistic or ridge regression, its "
                    "regularization chosen on the validation days), `blend` (the network and the boosting, fitted "
                    "on the same rows, the mean of their probabilities) or `auto` (every one fitted, the best on "
                    "the validation days registered). Each is stopped early, or tuned, on the validation days "
                    "and refit.")
    same_day_lead_minutes: int = Field(
        default=60, ge=0,
        description="The live model (the same-day line) learns from the same-day features as they were this "
                    "many minutes before each row's request time: what the stream had pushed online by then.")


class TrainingDevice(dg.ConfigurableResource):
    """Where training runs: `auto` (CUDA when present), `cpu` or `cuda`."""

    device: str = Field(default="auto", description="auto | cpu | cuda (env MLPLATFORM_TRAINING_DEVICE)")
    cpu_threads: int = Field(
        default=1, ge=0,
        description="Threads for fitting and scoring on the CPU: PyTorch's and the OpenMP and BLAS pools of "
                    "scikit-learn and NumPy (0: one per core; env MLPLATFORM_TRAINING_CPU_THREADS). One by "
                    "default: the network's batches are small, and a run rarely has the machine to itself (the "
                    "daemon runs two at once, each Celery worker one). Threads waiting for a busy core make a "
                    "fit many times slower, not faster (docs/benchmarks.md, 'Threads').")


class RetrainPolicy(dg.ConfigurableResource):
    """When the retrain sensor retrains the model. Each trigger can be turned off by its setting."""
    min_new_labeled_rows: int = Field(
        default=20_000, ge=0,
        description="Retrain once this many labeled rows arrived after the champion's last training "
                    "day (0: off). With no champion yet, this many labeled rows train the first one.")
    min_first_model_rows: int = Field(
        default=1000, ge=1,
        description="With no champion yet, the first model is trained once the days split and this many rows "
                    "are labeled (or min_new_labeled_rows, if fewer): a use case with a few weeks of data "
                    "gets a model.")
    psi_threshold: float = Field(
        default=0.25, gt=0,
        description="A feature drifts when its PSI against the training set exceeds this.")
    max_drifted_features: int = Field(
        default=3, ge=0, description="Retrain when more features than this drift on the newest days (0: any).")
    drift_trigger: bool = Field(
        default=False,
        description="Whether drift of the mix of what is predicted (the inputs that are not the spec's `conditions`, which "
                    "move every week by construction) triggers retraining. "
                    "On the replayed year it drifted in 7 of 48 weeks, one input each "
                    "(docs/drift_calibration.md); off by default, the drift check warns in the UI instead.")
    auc_drop_margin: float = Field(
        default=0.03, ge=0,
        description="Retrain when the champion's trailing realized ROC AUC falls this far below its "
                    "evaluation AUC.")
    performance_trigger: bool = Field(default=True, description="Whether a falling AUC triggers retraining.")
    cooldown_minutes: float = Field(
        default=30.0, ge=0, description="Never request a retrain sooner than this after the last one.")
    live_model: bool = Field(
        default=True,
        description="Each retrain also trains, gates and deploys the live model (the same-day line, the "
                    "same-day features) in a run of its own, `retrain_live` (env MLPLATFORM_RETRAIN_LIVE_MODEL).")


class StreamPolicy(dg.ConfigurableResource):
    """What the same-day stream's checks accept."""

    max_seconds_behind: float = Field(
        default=300, gt=0,
        description="With events waiting in the topic, the consumer's last commit may be this old "
                    "before `stream_keeps_up` warns (env MLPLATFORM_STREAM_MAX_SECONDS_BEHIND).")


def settings_from_env(resource: type[dg.ConfigurableResource], prefix: str, *, read_elsewhere: tuple[str, ...] = (),
                      **defaults) -> dg.ConfigurableResource:
    """The resource with any field overridden by `<PREFIX>_<FIELD>` in the environment (for example
    MLPLATFORM_RETRAIN_COOLDOWN_MINUTES=5), read when the code location loads. `read_elsewhere`: the
    variables under the prefix that are not this resource's (another part of the platform reads them)."""
    import os

    from pydantic import ValidationError

    from mlplatform.profile import ProfileError

    known = {f"{prefix}_{name.upper()}": name for name in resource.model_fields}
    # A misspelled or renamed setting would otherwise be ignored without a word.
    unknown = sorted(k for k in os.environ if k.startswith(f"{prefix}_") and k not in known and k not in read_elsewhere)
    if unknown:
        raise ProfileError(f"{', '.join(unknown)}: not a setting of {resource.__name__} (its settings: "
                           f"{', '.join(sorted(known))}; docs/configuration.md)")
    found = {name: os.environ[variable] for variable, name in known.items() if variable in os.environ}
    try:
        return resource(**{**defaults, **found})
    except ValidationError as invalid:
        # Pydantic names the field; where the value came from an environment variable, name that instead.
        variables = {name: variable for variable, name in known.items() if variable in os.environ}
        problems = []
        for error in invalid.errors():
            field = str(error["loc"][0])
            problems.append(f"{variables.get(field, f'{resource.__name__}.{field}')}={error.get('input')!r}: "
                            f"{error['msg']}")
        raise ProfileError(f"{'; '.join(problems)} (a setting of {resource.__name__}; docs/configuration.md)") from None
