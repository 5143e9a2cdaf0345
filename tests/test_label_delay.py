"""Outcomes that arrive late: with `label_delay_days` N, nothing reads an outcome of the last N days
before it is known. Changing those outcomes changes no training row and no retrain count."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pyarrow as pa
import pytest

from mlplatform.features.service import JOIN_KEYS, LABEL, PREDICTION_KEY, REQUEST_TIMESTAMP
from mlplatform.features.training import ENTITY_TABLE, TrainingWindowError, labeled_rows, matured_days
from mlplatform.ingest.lake import Lake

pytestmark = pytest.mark.fast
DAYS = [(date(2013, 3, 1) + timedelta(days=i)).isoformat() for i in range(10)]


def _exports(root, outcome) -> Lake:
    lake = Lake(root)
    for i, day in enumerate(DAYS):
        rows = pd.DataFrame({PREDICTION_KEY: [f"{day}-{n}" for n in range(5)],
                             REQUEST_TIMESTAMP: pd.Timestamp(day, tz="UTC") + pd.to_timedelta(range(5), "h"),
                             **{key: ["k"] * 5 for key in JOIN_KEYS}, LABEL: [outcome(i, n) for n in range(5)]})
        lake.write(ENTITY_TABLE, pa.Table.from_pandas(rows, preserve_index=False), day)
    return lake


def test_unmatured_outcomes_are_never_read(tmp_path):
    truth = _exports(tmp_path / "a", lambda i, n: float(i * 10 + n))
    # The outcomes of the last three days changed (they are not known yet: anything may come).
    changed = _exports(tmp_path / "b", lambda i, n: float(i * 10 + n) if i < 7 else -1.0)
    assert matured_days(DAYS, 3) == DAYS[:7]
    first, read = labeled_rows(truth, None, None, label_delay_days=3)
    second, _ = labeled_rows(changed, None, None, label_delay_days=3)
    assert read == DAYS[:7] and len(first) == 35
    pd.testing.assert_frame_equal(first, second)
    # Without the delay the changed outcomes would have been read: the test could fail.
    assert not labeled_rows(truth, None, None, label_delay_days=0)[0].equals(
        labeled_rows(changed, None, None, label_delay_days=0)[0])


def test_a_window_of_unknown_outcomes_is_named(tmp_path):
    exports = _exports(tmp_path, lambda i, n: 1.0)
    with pytest.raises(TrainingWindowError, match=r"outcomes known through 2013-03-07"):
        labeled_rows(exports, "2013-03-08", None, label_delay_days=3)
    with pytest.raises(TrainingWindowError, match="no outcome is known yet"):
        labeled_rows(exports, None, None, label_delay_days=30)


def test_live_performance_of_a_binary_task_with_late_outcomes_judges_the_matured_days(tmp_path, monkeypatch):
    """A binary use case whose outcomes are 3 days late: the newest days have no outcome yet (null,
    as its dbt model leaves them). Live performance judges the days that matured, on its metric, and
    does not fail the run for the days that have not."""
    import dagster as dg

    from mlplatform.assets import monitoring
    from mlplatform.model.deployment import PREDICTIONS
    from mlplatform.resources import ModelSpec, PlatformState, RetrainPolicy
    from mlplatform.state import StatePaths
    from mlplatform.usecases import UseCaseSpec, load

    spec = UseCaseSpec.model_validate(load("flights").model_dump())  # a copy, without its loaded hooks
    spec.prediction.label_delay_days = 3
    monkeypatch.setattr(monitoring, "active", lambda: spec)
    exports = Lake(StatePaths(tmp_path).exports)
    for i, day in enumerate(DAYS):
        keys = [f"{day}-{n}" for n in range(6)]
        labels = [float(n % 2) if i < 7 else None for n in range(6)]
        exports.write(ENTITY_TABLE, pa.Table.from_pandas(pd.DataFrame({PREDICTION_KEY: keys, LABEL: labels}),
                                                         preserve_index=False), day)
        scores = pd.DataFrame({PREDICTION_KEY: keys, spec.prediction.output: [0.2, 0.7, 0.3, 0.6, 0.4, 0.9],
                               "model_version": 1})
        exports.write(PREDICTIONS, pa.Table.from_pandas(scores, preserve_index=False), day)
    result = monitoring.live_performance(dg.build_asset_context(partition_key=DAYS[-1]),
                                         state=PlatformState(home=str(tmp_path)), model_spec=ModelSpec(),
                                         retrain_policy=RetrainPolicy())
    assert result.metadata["judged_days"] == f"{DAYS[6]} .. {DAYS[6]}" and result.metadata["roc_auc"] == 1.0
    assert all(check.passed for check in result.check_results)


def test_a_prediction_column_the_model_does_not_export_is_named_with_its_field(tmp_path):
    from mlplatform.features.training import PredictionContractError, prediction_rows

    lake = Lake(tmp_path)
    rows = pd.DataFrame({PREDICTION_KEY: ["a"], REQUEST_TIMESTAMP: [pd.Timestamp(DAYS[0], tz="UTC")],
                         **{key: ["k"] for key in JOIN_KEYS}, "outcome": [1.0]})
    lake.write(ENTITY_TABLE, pa.Table.from_pandas(rows, preserve_index=False), DAYS[0])
    with pytest.raises(PredictionContractError, match=rf"prediction.label '{LABEL}', which its dbt model "
                                                      rf"'{ENTITY_TABLE}' does not export \(its columns: .*outcome"):
        labeled_rows(lake, None, None, label_delay_days=0)
    with pytest.raises(PredictionContractError, match="prediction.label"):
        prediction_rows(lake, DAYS[0], DAYS[0])
