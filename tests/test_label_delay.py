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
