"""Regression beside binary classification in the model code: the network, gradient boosting and
their blend learn a number, the baselines are a regression's, the compiled trees serve it, a bundle
round-trips, and the gate judges by the metric the use case names (lower RMSE is better)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlplatform.features.service import LABEL, REQUEST_TIMESTAMP
from mlplatform.ml.columns import CATEGORICAL
from mlplatform.ml.device import select_device
from mlplatform.ml.split import NotEnoughData, require_trainable, split_by_time

pytestmark = pytest.mark.fast


@pytest.fixture(scope="module")
def split():
    """Fifty days of rows whose target is a number: linear in one input, shifted by one category."""
    rng = np.random.default_rng(7)
    n = 5000
    frame = pd.DataFrame({column: rng.choice(["a", "b", "c"], n) for column in CATEGORICAL})
    frame[REQUEST_TIMESTAMP] = pd.Timestamp("2013-03-01T15:00Z") + pd.to_timedelta(rng.integers(0, 50 * 24, n), "h")
    frame["stats__x"] = rng.normal(size=n)
    frame["stats__noise"] = rng.normal(size=n)
    frame[LABEL] = 50 + 30 * frame["stats__x"] + 25 * (frame[CATEGORICAL[0]] == "a") + rng.normal(scale=5, size=n)
    return split_by_time(frame.sort_values(REQUEST_TIMESTAMP).reset_index(drop=True), holdout_days=10,
                         validation_days=10)


def test_every_family_learns_a_number_and_beats_the_regression_baselines(split, tmp_path):
    from mlplatform.ml.boosting import BoostingConfig, CompiledTrees, inputs
    from mlplatform.ml.bundle import BLEND, GRADIENT_BOOSTING, NETWORK, load_bundle, save_bundle
    from mlplatform.ml.candidates import fit_candidates, validation_table
    from mlplatform.ml.evaluate import TRAINING_MEAN, regression_baselines
    from mlplatform.ml.preprocess import Preprocessor
    from mlplatform.ml.task import REGRESSION, metrics
    from mlplatform.ml.train import TrainConfig

    numeric = ["stats__noise", "stats__x"]
    candidates = fit_candidates(split, numeric, [NETWORK, GRADIENT_BOOSTING], settings=select_device("cpu"),
                                train_config=TrainConfig(max_epochs=15, task=REGRESSION),
                                boosting_config=BoostingConfig(max_iterations=200, min_samples_leaf=20,
                                                               task=REGRESSION), with_refit=True)
    by_family = {c.family: c for c in candidates}
    assert set(by_family) == {NETWORK, GRADIENT_BOOSTING, BLEND}
    assert set(validation_table(candidates, REGRESSION)[BLEND]) >= {"rmse", "mae"}
    label = split.holdout[LABEL].to_numpy()
    fitted = split.fitting_rows(with_validation=True)
    pre = Preprocessor.fit(fitted, list(CATEGORICAL), numeric)
    opponents = regression_baselines(pre, (*pre.transform(fitted), fitted[LABEL].to_numpy()), pre.transform(split.holdout))
    mean_rmse = metrics(REGRESSION, label, opponents[TRAINING_MEAN])["rmse"]
    for family, candidate in by_family.items():
        predicted = candidate.trained.score(split.holdout)
        # Values on the target's scale (a logistic output would sit in 0..1), well under the mean's error.
        assert predicted.mean() == pytest.approx(label.mean(), rel=0.1), family
        assert metrics(REGRESSION, label, predicted)["rmse"] < 0.3 * mean_rmse, family
        folder = save_bundle(tmp_path / family, candidate.trained)
        np.testing.assert_allclose(load_bundle(folder).score(split.holdout.head(50)),
                                   candidate.trained.score(split.holdout.head(50)), rtol=1e-5)
    # The serving path (a few rows) walks the compiled trees: the regressor's own predictions.
    boosting = by_family[GRADIENT_BOOSTING].trained
    rows = split.holdout.head(20)
    np.testing.assert_allclose(CompiledTrees(boosting.estimator).probabilities(inputs(boosting.pre, rows)),
                               boosting.estimator.predict(inputs(boosting.pre, rows)), rtol=1e-9)
    np.testing.assert_allclose(boosting.score_records(rows.to_dict("records")), boosting.score(rows), rtol=1e-5)


def test_the_gate_judges_by_the_named_metric_in_its_direction():
    from mlplatform.ml.gate import GateSettings, gate

    settings = GateSettings(metric="rmse", floor=None, tolerance=1.0)
    rivals = {"training_mean": {"rmse": 140.0}, "ridge_regression": {"rmse": 120.0},
              "hist_gradient_boosting": {"rmse": 118.0}}
    passed, reason = gate("regression", {"rmse": 110.0}, rivals, None, settings)
    assert passed and "RMSE 110.0000 < the best baseline's (hist_gradient_boosting) 118.0000" in reason
    passed, reason = gate("regression", {"rmse": 118.0}, rivals, None, settings)
    assert not passed and "RMSE 118.0000 >= the best baseline's" in reason  # a tie does not beat it
    # A champion may be beaten by at most the tolerance, upwards for an error.
    assert gate("regression", {"rmse": 110.9}, rivals, {"rmse": 110.0}, settings)[0]
    passed, reason = gate("regression", {"rmse": 111.5}, rivals, {"rmse": 110.0}, settings)
    assert not passed and reason == "failed: RMSE 111.5000 > champion 110.0000 + tolerance 1.0 = 111.0000"
    floor = GateSettings(metric="rmse", floor=100.0)
    passed, reason = gate("regression", {"rmse": 110.0}, rivals, None, floor)
    assert not passed and "RMSE 110.0000 > min_metric 100.0" in reason


def test_a_regression_label_must_be_numbers_that_vary():
    frame = pd.DataFrame({LABEL: [3.0] * 20})
    with pytest.raises(NotEnoughData, match="single value"):
        require_trainable(frame, LABEL, "training split", 10, task="regression")
    with pytest.raises(NotEnoughData, match="without a numeric"):
        require_trainable(pd.DataFrame({LABEL: [1.0, None] * 10}), LABEL, "training split", 10, task="regression")
    require_trainable(pd.DataFrame({LABEL: np.arange(20.0)}), LABEL, "training split", 10, task="regression")


def test_auto_fits_every_family_and_registers_the_best_on_the_validation_days(split, tmp_path):
    """On a target that is linear in its inputs, the linear family wins the validation days and
    `auto` registers it; served from its coefficients, it predicts what scikit-learn's fit does,
    and a bundle round-trips."""
    from mlplatform.ml.boosting import BoostingConfig
    from mlplatform.ml.bundle import AUTO, BLEND, LINEAR, load_bundle, save_bundle
    from mlplatform.ml.candidates import fit_candidates, parts_of, registered, validation_table
    from mlplatform.ml.task import REGRESSION, metrics
    from mlplatform.ml.train import TrainConfig

    numeric = ["stats__noise", "stats__x"]
    candidates = fit_candidates(split, numeric, parts_of(AUTO), settings=select_device("cpu"),
                                train_config=TrainConfig(max_epochs=5, task=REGRESSION),
                                boosting_config=BoostingConfig(max_iterations=100, min_samples_leaf=20,
                                                               task=REGRESSION), with_refit=True)
    table = validation_table(candidates, REGRESSION)
    assert set(table) == {"network", "gradient_boosting", LINEAR, BLEND} and "strength" in table[LINEAR]
    chosen = registered(candidates, AUTO, REGRESSION)
    assert chosen.family == LINEAR and table[LINEAR]["rmse"] == min(t["rmse"] for t in table.values())
    label = split.holdout[LABEL].to_numpy()
    predicted = chosen.trained.score(split.holdout)
    assert metrics(REGRESSION, label, predicted)["rmse"] < 6  # the noise's own scale is 5
    again = load_bundle(save_bundle(tmp_path / "linear", chosen.trained))
    assert np.allclose(again.score(split.holdout), predicted, atol=1e-4)
    assert np.allclose(again.score_records(split.holdout.head(3).to_dict("records")), predicted[:3], atol=1e-4)


def test_the_linear_family_serves_a_binary_probability_as_scikit_learn_computes_it(split):
    """A logistic regression on the same inputs, served as a dot product and a sigmoid."""
    from sklearn.linear_model import LogisticRegression

    from mlplatform.ml.evaluate import one_hot
    from mlplatform.ml.linear import fit_at_strength
    from mlplatform.ml.preprocess import Preprocessor
    from mlplatform.ml.task import BINARY

    rows = split.train
    pre = Preprocessor.fit(rows, list(CATEGORICAL), ["stats__noise", "stats__x"])
    cats, nums = pre.transform(rows)
    label = (rows[LABEL] > rows[LABEL].median()).to_numpy().astype(int)
    model = fit_at_strength(pre, cats, nums, label, BINARY, 1.0)
    reference = LogisticRegression(C=1.0, max_iter=500).fit(one_hot(pre, cats, nums), label)
    expected = reference.predict_proba(one_hot(pre, cats, nums))[:, 1]
    got = model.predict(cats, nums)
    assert ((0 <= got) & (got <= 1)).all() and np.allclose(got, expected, atol=1e-5)
