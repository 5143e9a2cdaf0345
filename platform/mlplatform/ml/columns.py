"""Which training-set columns the model reads, and how: from the use case's spec (`model` in its
`defs.yaml`) and its hooks (the columns it derives from a request)."""

from __future__ import annotations

import pandas as pd

from mlplatform.features.service import EVENT_TIMESTAMP, LABEL, PREDICTION_KEY, REQUEST_TIMESTAMP
from mlplatform.usecases import active

_USE_CASE = active()
# Categorical inputs, embedded.
CATEGORICAL = tuple(_USE_CASE.model.categorical)
# Identifiers and timestamps: never inputs.
NOT_INPUTS = {PREDICTION_KEY, EVENT_TIMESTAMP, REQUEST_TIMESTAMP, LABEL, *_USE_CASE.model.not_inputs}


def with_derived(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with the columns the use case's model derives from a request (its hooks)."""
    derive = getattr(_USE_CASE.module, "with_derived", None)
    return derive(frame) if derive else frame


def with_derived_record(record: dict) -> dict:
    """`with_derived` for one prediction given as a dict (the serving path)."""
    derive = getattr(_USE_CASE.module, "with_derived_record", None)
    return derive(record) if derive else record


class InputColumnError(ValueError):
    """The spec names a model input the training set does not have; the message names both."""


def require_inputs(frame: pd.DataFrame) -> None:
    """Every categorical input the spec names is a column of the training set (or one its hooks
    derive): a misspelt name would otherwise end a training run with a bare KeyError."""
    columns = with_derived(frame.head(0)).columns
    missing = [c for c in CATEGORICAL if c not in columns]
    if missing:
        features = ", ".join(sorted(c for c in columns if "__" in c))
        raise InputColumnError(f"model.categorical of the use case {_USE_CASE.name!r} names "
                               f"{', '.join(map(repr, missing))}, which the training set does not have (its "
                               f"feature columns, named <feature view>__<feature>: {features})")


def numeric_inputs(frame: pd.DataFrame) -> list[str]:
    """Every numeric feature column (Feast's `<view>__<feature>` names), in a stable order."""
    return sorted(c for c in frame.columns
                  if c not in NOT_INPUTS and c not in CATEGORICAL and "__" in c
                  and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]))


# Inputs that describe the conditions of the moment rather than the population being predicted
# (the use case's `model.conditions`): a week's values sit in a narrow band of a training set's
# spread, so their PSI is large every week by construction; a change of conditions is what the model
# is there to predict through, and the champion's realized metric (live_performance) watches it.
# Drift is measured on the rest.
CONDITIONS = tuple(_USE_CASE.model.conditions)


def is_condition(column: str) -> bool:
    return column.startswith(CONDITIONS)
