"""A use case, declared: what it predicts, from which feeds, with which features, and how it is judged.

The platform is machinery; a use case is a plug-in. Each one is a YAML instance of the component
class `UseCase` in `platform/mlplatform/defs/<name>/defs.yaml` (Dagster's `dg` layout), with its own
Python hooks beside it, its dbt models in `dbt_project/models/<name>/` and its Feast definitions in
`feature_repo/`. The machinery reads every name it needs from here (tables, columns, entities,
feature services, registered models, API fields) and names none of them itself.

    feeds       the landing tables: daily ones (one file a day) and reference ones (whole)
    calendar    the data's time zone and the days the feed covers
    prediction  the dbt model with one row per prediction: its key, event time, label, the entity
                keys its features hang off, and `label_delay_days` (how long an outcome takes to
                be known)
    task        `binary` or `regression`, the metric the gate judges by, and the gate's settings
    features    the Feast feature service(s) and the dbt feature tables behind them
    model       the registered model lines, the categorical inputs, the monitoring groups
    hooks       a Python module of the use case: its data contracts, its feed, the columns the
                model derives from a request
"""

from __future__ import annotations

import importlib
from datetime import date
from functools import cached_property
from types import ModuleType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

BINARY, REGRESSION = "binary", "regression"


class _Spec(BaseModel):
    """A part of the spec: unknown keys are an error (a misspelt setting must not pass silently)."""

    model_config = ConfigDict(extra="forbid")
# Metrics a task can be judged by, and whether more is better.
METRICS: dict[str, dict[str, bool]] = {
    BINARY: {"roc_auc": True, "pr_auc": True, "log_loss": False, "brier": False},
    REGRESSION: {"rmse": False, "mae": False, "r2": True},
}


class Feed(_Spec):
    """One landing table of the feed."""

    table: str = Field(description="The table's name: its landing folder, lake folder and raw asset (raw_<table>).")
    daily: bool = Field(default=False, description="One file a day (partitioned by day), else delivered whole.")


class Calendar(_Spec):
    timezone: str = Field(description="The IANA time zone the data's days are local to.")
    first_day: date = Field(description="The first day the feed delivers.")
    last_day: date = Field(description="The last day the feed delivers.")


class Prediction(_Spec):
    """The prediction grain: the dbt model with one row per prediction, exported by day."""

    model: str = Field(description="The dbt model (meta.export by day) holding one row per prediction.")
    key: str = Field(description="The column that identifies a prediction.")
    event_time: str = Field(description="When the prediction is made (UTC timestamp): the point in time of its "
                                        "features, and what its day is.")
    label: str = Field(description="The outcome the model learns.")
    label_delay_days: int = Field(default=0, ge=0, description="Days after the event time before the outcome is "
                                                                "known; nothing reads a label earlier.")
    entity_keys: list[str] = Field(description="The join keys of the feature views a row's features hang off.")
    output: str = Field(default="prediction", description="The name of the model's output where it is stored "
                                                          "(batch predictions, the prediction log).")


class Task(_Spec):
    kind: Literal["binary", "regression"] = Field(description="binary classification or regression.")
    metric: str = Field(description="The metric the gate, live performance and shadow verdicts judge by.")
    min_metric: float | None = Field(default=None, description="A floor every challenger must reach on the metric.")
    tolerance: float = Field(default=0.005, ge=0, description="A challenger may be this much worse than the "
                                                              "champion on the metric and still pass.")
    drop_margin: float | None = Field(
        default=None, ge=0,
        description="How far the champion's realized metric may fall past its evaluation (in the metric's units) "
                    "before live performance warns and the retrain trigger fires. Unset: the retrain policy's "
                    "auc_drop_margin for roc_auc, a tenth of the evaluated figure for any other metric.")

    @model_validator(mode="after")
    def _known_metric(self) -> "Task":
        if self.metric not in METRICS[self.kind]:
            raise ValueError(f"task.metric {self.metric!r} is not a {self.kind} metric; choose among "
                             f"{', '.join(METRICS[self.kind])}")
        return self

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.kind][self.metric]


class FeatureTables(_Spec):
    daily: list[str] = Field(default_factory=list, description="dbt feature tables exported by day.")
    reference: list[str] = Field(default_factory=list, description="dbt feature tables exported whole.")
    same_day: list[str] = Field(default_factory=list, description="dbt models computing the stream's features offline.")


class Features(_Spec):
    service: str = Field(description="The Feast feature service the day-ahead model reads.")
    service_version: str = Field(default="v1", description="The service's version (its name ends with it).")
    same_day_service: str | None = Field(default=None, description="The service of the same-day stream's features.")
    request_view: str | None = Field(default=None, description="An on-demand view computed from the request.")
    request_time: str = Field(description="The request field that carries the event time (Feast's request source).")
    tables: FeatureTables = Field(default_factory=FeatureTables)


class NetworkSettings(_Spec):
    """A line's network settings where they differ from the platform's (`ml/train.py`, `TrainConfig`;
    `patience` from the model spec): a line whose data differs in size or kind may need its own,
    chosen on its validation days (docs/use_cases.md)."""

    patience: int | None = Field(default=None, ge=1, description="Epochs without validation improvement before stopping.")
    dropout: float | None = Field(default=None, ge=0, lt=1, description="After each hidden layer.")
    weight_decay: float | None = Field(default=None, ge=0, description="AdamW's.")
    hidden: list[int] | None = Field(default=None, min_length=1, description="The hidden layers' widths.")

    def overrides(self) -> dict:
        """The settings given, as `TrainConfig` fields."""
        given = self.model_dump(exclude_none=True)
        return {**given, "hidden": tuple(given["hidden"])} if "hidden" in given else given


class ModelLine(_Spec):
    name: str = Field(description="The line's name, e.g. day_ahead.")
    registered_model: str = Field(description="The MLflow registered model of this line.")
    asset_prefix: str = Field(default="", description="Prefix of the line's asset keys.")
    same_day: bool = Field(default=False, description="Trained and served with the same-day features too.")
    network: NetworkSettings = Field(default_factory=NetworkSettings,
                                     description="This line's network settings, where they differ from the platform's.")


class Models(_Spec):
    experiment: str = Field(description="The MLflow experiment of the use case's runs.")
    lines: list[ModelLine] = Field(min_length=1)
    categorical: list[str] = Field(default_factory=list, description="Inputs embedded as categories.")
    not_inputs: list[str] = Field(default_factory=list, description="Columns that are never inputs (ids, times).")
    family: Literal["network", "gradient_boosting", "linear", "blend", "auto"] | None = Field(
        default=None, description="The model family this use case registers by default (model_spec.model_family, "
                                  "which the environment still overrides): `auto` lets the validation days "
                                  "choose among every family, the linear one included, which suits a few weeks "
                                  "of data. Unset: the model spec's default (blend).")
    conditions: list[str] = Field(default_factory=list, description="Feature-name prefixes that describe the "
                                                                     "moment, not the population: monitored apart "
                                                                     "from drift.")


class Api(_Spec):
    """The use case's routes: the request model is its hooks' `Request`, turned into a feature lookup by
    its hooks' `lookup(request)`."""

    batch_field: str = Field(default="requests", description="The list of requests /predict/batch takes.")


class UseCaseSpec(_Spec):
    """A use case of the platform: its feeds, its prediction grain, its task, its features and model.

    Declared once, in `defs/<name>/defs.yaml` as an instance of the component `UseCase`
    (`component.py`); read without Dagster by `mlplatform.usecases.load`, so that light commands
    (`status`) stay light."""

    model_config = ConfigDict(extra="forbid", ignored_types=(cached_property,))

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="The use case's name: its folders' and its code location's.")
    namespace: str | None = Field(
        default=None, pattern=r"^([a-z][a-z0-9_]*)?$",
        description="What the names the machinery gives this use case's things start with: asset keys, jobs, "
                    "sensors (`<namespace>_training_set`, `<namespace>_daily_refresh`) and its own folder of "
                    "the state directory (`<namespace>/`). Its name when unset. Empty: the machinery's bare "
                    "names and the state directory's root, as a state directory built before namespaces "
                    "has them; at most one enabled use case may have it empty.")
    title: str = ""
    hooks: str = Field(description="The use case's Python module: CONTRACTS, the feed (reference_file, "
                                   "daily_file) and with_derived / with_derived_record.")
    dbt_folder: str = Field(description="Its dbt models' folder under dbt_project/models/.")
    calendar: Calendar
    feeds: list[Feed] = Field(min_length=1)
    prediction: Prediction
    task: Task
    features: Features
    model: Models
    api: Api = Field(default_factory=Api)

    @cached_property
    def module(self) -> ModuleType:
        """The hooks module, imported when first asked for."""
        return importlib.import_module(self.hooks)

    @property
    def daily_tables(self) -> tuple[str, ...]:
        return tuple(f.table for f in self.feeds if f.daily)

    @property
    def reference_tables(self) -> tuple[str, ...]:
        return tuple(f.table for f in self.feeds if not f.daily)

    @property
    def key_prefix(self) -> str:
        """What its asset keys, jobs and sensors start with ("" for the empty namespace)."""
        namespace = self.name if self.namespace is None else self.namespace
        return f"{namespace}_" if namespace else ""

    @property
    def state_folder(self) -> str:
        """Its own folder below the state directory's root ("" for the empty namespace)."""
        return self.name if self.namespace is None else self.namespace

    def line(self, name: str) -> ModelLine:
        return next(line for line in self.model.lines if line.name == name)
