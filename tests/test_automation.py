"""The sensors' decisions, on a real Dagster instance with real landed files and real runs."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date

import dagster as dg
import pandas as pd
import pytest

from helpers import module_home
from mlplatform.automation.downstream import downstream_sensor, plan_downstream_run
from mlplatform.automation.jobs import DAILY_MODELS, ONLINE, keys
from mlplatform.automation.landing import landing_sensor
from mlplatform.automation.retrain import RetrainFacts, decide, retrain_sensor
from mlplatform.ingest.landing import LandingZone
from mlplatform.ingest.replay import Replayer
from mlplatform.resources import PlatformState, RetrainPolicy
from mlplatform.state import StatePaths


def _tick(sensor, instance, paths: StatePaths, cursor: str | None = None, **resources):
    from mlplatform.resources import ModelSpec

    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={
        "state": PlatformState(home=str(paths.home)), "model_spec": ModelSpec(holdout_days=1, validation_days=1, min_train_days=1),
        **resources})
    result = sensor(context)
    requests = result if isinstance(result, list) else ([result] if isinstance(result, dg.RunRequest) else [])
    return requests, result if isinstance(result, dg.SkipReason) else None, context.cursor


def _execute(instance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    from mlplatform.definitions import defs

    return defs.resolve_job_def(request.job_name).execute_in_process(
        instance=instance, partition_key=request.partition_key, tags=request.tags,
        asset_selection=request.asset_selection, raise_on_error=False)


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    with module_home(tmp_path_factory, "automation") as paths:
        zone = LandingZone(paths.landing, paths.quarantine)
        Replayer(zone).replay(through=date(2013, 1, 3))
        with dg.instance_for_test(temp_dir=str(paths.dagster_home)) as instance:
            yield {"paths": paths, "zone": zone, "instance": instance}


def test_landing_sensor_requests_each_file_once_across_ticks_and_restarts(landed) -> None:
    paths, zone, instance = landed["paths"], landed["zone"], landed["instance"]
    requests, _, cursor = _tick(landing_sensor, instance, paths)
    # The days landed since the last tick are one run over their range (not a run, a process, a day).
    by_target = {r.tags.get("dagster/asset_partition_range_start", r.partition_key) or "reference": r for r in requests}
    assert sorted(by_target) == ["2013-01-01", "reference"]
    assert by_target["2013-01-01"].tags["dagster/asset_partition_range_end"] == "2013-01-03"
    assert set(by_target["2013-01-01"].asset_selection) == {dg.AssetKey("raw_flights"), dg.AssetKey("raw_weather")}
    assert by_target["reference"].job_name == "raw_reference"
    assert len({r.run_key for r in requests}) == 2

    again, skipped, cursor = _tick(landing_sensor, instance, paths, cursor)
    assert not again and "no new landing files" in skipped.skip_message

    # The daemon restarts (the cursor is what it keeps); a day landed meanwhile is requested, alone.
    Replayer(zone).replay(through=date(2013, 1, 4))
    after_restart, _, cursor = _tick(landing_sensor, instance, paths, cursor)
    assert [r.partition_key for r in after_restart] == ["2013-01-04"]

    # A re-delivered file (new modification time) is requested again, for its table only.
    weather = zone.file("weather", "2013-01-02")
    os.utime(weather, ns=(weather.stat().st_atime_ns, weather.stat().st_mtime_ns + 1_000_000))
    redelivered, _, cursor = _tick(landing_sensor, instance, paths, cursor)
    assert [(r.partition_key, r.asset_selection) for r in redelivered] == [("2013-01-02", [dg.AssetKey("raw_weather")])]
    landed["cursor"] = cursor


def test_a_quarantined_file_is_not_requested_again(landed) -> None:
    paths, zone, instance = landed["paths"], landed["zone"], landed["instance"]
    Replayer(zone).replay(through=date(2013, 1, 5))
    bad = zone.file("flights", "2013-01-05")
    bad.write_text("not,the,flights,header\n1,2,3,4\n")
    requests, _, cursor = _tick(landing_sensor, instance, paths, landed["cursor"])
    [request] = requests
    run = _execute(instance, request)
    assert not run.success and not bad.exists() and zone.quarantined("flights", "2013-01-05")
    again, skipped, cursor = _tick(landing_sensor, instance, paths, cursor)
    assert not again and skipped is not None
    landed["failed_run_id"] = run.run_id

    # The run-failure sensor records it, with the step's own error.
    from mlplatform.automation.failures import failures, run_failure_sensor

    failure = next(iter(instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE))).dagster_event
    run_failure_sensor(dg.build_run_status_sensor_context(
        sensor_name="run_failure_sensor", dagster_instance=instance, dagster_run=instance.get_run_by_id(run.run_id),
        dagster_event=failure).for_run_failure())
    [entry] = failures(paths)
    assert entry["run_id"] == run.run_id and entry["partition"] == "2013-01-05"
    assert "flights" in json.dumps(entry["failed_steps"])


def test_downstream_sensor_refreshes_reference_first_then_due_days_as_one_range(landed) -> None:
    paths, instance = landed["paths"], landed["instance"]
    for request in _tick(landing_sensor, instance, paths)[0]:  # a fresh cursor: everything still landed
        _execute(instance, request)
    # What is stored is not requested again, even with the cursor lost (or after `mlplatform pipeline`).
    again, skipped, _ = _tick(landing_sensor, instance, paths)
    assert not again and skipped is not None
    [reference], _, cursor = _tick(downstream_sensor, instance, paths)
    assert reference.job_name == "reference_refresh"
    assert _execute(instance, reference).success

    [daily], _, cursor = _tick(downstream_sensor, instance, paths, cursor)
    assert daily.job_name == "daily_refresh"
    # 2013-01-05's flights were quarantined: the day is not complete, so the range ends before it.
    assert (daily.tags["dagster/asset_partition_range_start"], daily.tags["dagster/asset_partition_range_end"]) \
        == ("2013-01-01", "2013-01-04")
    # No training set and no champion yet: no drift, no scoring.
    assert set(daily.asset_selection) == set(keys(DAILY_MODELS + ONLINE))
    result = _execute(instance, daily)
    assert result.success
    assert instance.get_materialized_partitions(dg.AssetKey("online_features")) >= {"2013-01-01", "2013-01-04"}

    _, skipped, cursor = _tick(downstream_sensor, instance, paths, cursor)
    assert "every stored day is refreshed" in skipped.skip_message
    landed["downstream_cursor"] = cursor


def test_downstream_sensor_waits_for_a_run_in_flight(landed) -> None:
    from mlplatform.definitions import defs

    instance = landed["instance"]
    run = instance.create_run_for_job(job_def=defs.resolve_job_def("daily_refresh"), status=dg.DagsterRunStatus.STARTED)
    try:
        plan = plan_downstream_run(instance, {})
        assert plan.run_request is None and run.run_id[:8] in plan.reason
    finally:
        instance.delete_run(run.run_id)


def test_edited_feature_definitions_are_applied_again_first(landed, monkeypatch) -> None:
    """An edit of feature_repo/ (its hash differs from the applied one) is a reference refresh, each
    edit its own work: edits one after another are not counted as retries of one failure."""
    from mlplatform.automation.retries import HEADLESS
    from mlplatform.features import repo

    instance, paths = landed["instance"], landed["paths"]
    assert plan_downstream_run(instance, {}, paths=paths).run_request is None  # everything is refreshed
    monkeypatch.setattr(repo, "definitions_hash", lambda: "0123456789abcdef")
    plan = plan_downstream_run(instance, {}, paths=paths, retry=HEADLESS)
    assert plan.run_request.job_name == "reference_refresh" and "feature definitions" in plan.reason
    assert plan.run_request.tags["mlplatform/trigger"] == "feature definitions edited"
    # That run failed (one attempt headless): given up on this edit, until the next edit.
    assert plan_downstream_run(instance, plan.attempted, paths=paths, retry=HEADLESS).run_request is None
    monkeypatch.setattr(repo, "definitions_hash", lambda: "fedcba9876543210")
    again = plan_downstream_run(instance, plan.attempted, paths=paths, retry=HEADLESS)
    assert again.run_request is not None and again.run_request.run_key != plan.run_request.run_key


POLICY = RetrainPolicy(min_new_labeled_rows=1000, psi_threshold=0.25, max_drifted_features=2, drift_trigger=True,
                       auc_drop_margin=0.03, cooldown_minutes=30)
CHAMPION = dict(champion_version=3, trained_through="2013-03-01", evaluation_metric=0.72)


@pytest.mark.parametrize("facts, retrain, trigger, words", [
    (RetrainFacts(labeled_rows=5000), True, "no_champion", "no champion yet"),
    (RetrainFacts(labeled_rows=10), False, "", "10 of 1,000 new labeled rows"),
    (RetrainFacts(**CHAMPION, labeled_rows=1500), True, "new_labeled_rows", "1,500 rows labeled since"),
    (RetrainFacts(**CHAMPION, labeled_rows=10, drifted_features=["a", "b", "c"], max_psi=0.4,
                  drift_days="2013-03-02 .. 2013-03-02"), True, "feature_drift", "3 features drifted"),
    (RetrainFacts(**CHAMPION, labeled_rows=10, drifted_features=["a"], max_psi=0.3), False, "",
     "drift: 1 input(s) of the prediction mix over PSI 0.25 (retrains past 2)"),
    (RetrainFacts(**CHAMPION, labeled_rows=10, live_metric=0.65), True, "live_performance", "0.0700 worse"),
    (RetrainFacts(**CHAMPION, labeled_rows=10, live_metric=0.70), False, "", "live AUC 0.7000, 0.0200 worse"),
    (RetrainFacts(**CHAMPION, labeled_rows=1500, minutes_since_last_retrain=5), False, "new_labeled_rows",
     "cooling down (5.0 of 30.0 min"),
    (RetrainFacts(**CHAMPION, labeled_rows=1500, minutes_since_last_retrain=45), True, "new_labeled_rows", ""),
    (RetrainFacts(labeled_rows=5000, retrain_in_progress="abcdef123"), False, "", "already queued or running"),
    (RetrainFacts(labeled_rows=5000, built_days=20, days_needed=35), False, "", "waiting for 35 built days"),
    # Days enough, but the training days' rows under model_spec.min_train_rows: training would refuse.
    (RetrainFacts(labeled_rows=4179, built_days=70, days_needed=65, training_rows=726, min_train_rows=1000),
     False, "", "waiting for 1,000 labeled rows in the training days (have 726"),
    (RetrainFacts(**CHAMPION, labeled_rows=1500, refresh_in_progress="fedcba987"), False, "",
     "waiting for the refresh run fedcba98"),
    # The gate refused a challenger trained on the inputs there are now: a decision, not repeated.
    (RetrainFacts(labeled_rows=5000, refused_version=2, refused_reason="failed: ROC AUC 0.6750 <= the best "
                  "baseline's (logistic_regression) 0.6960"), False, "",
     "version 2, trained on these same labeled rows, code and settings, was refused by the gate (failed: ROC AUC"),
])
def test_retrain_decisions(facts, retrain, trigger, words) -> None:
    decision = decide(POLICY, facts)
    assert (decision.retrain, decision.trigger) == (retrain, trigger)
    assert words in decision.reason


@pytest.mark.parametrize("declared, live, retrain", [
    (None, 112.0, True),   # RMSE 100 evaluated: a tenth (10.0) is allowed, 12 worse fires
    (None, 108.0, False),
    (20.0, 112.0, False),  # the use case's own task.drop_margin, in RMSE
    (None, 80.0, False),   # lower is better: an error that fell is no drop
])
def test_the_performance_trigger_judges_the_use_cases_metric_in_its_own_units(declared, live, retrain) -> None:
    facts = RetrainFacts(champion_version=1, trained_through="1997-09-01", metric="rmse", evaluation_metric=100.0,
                         live_metric=live, drop_margin=declared, labeled_rows=10)
    decision = decide(POLICY, facts)
    assert (decision.retrain, decision.trigger) == (retrain, "live_performance" if retrain else "")
    assert "RMSE" in decision.reason


def test_turned_off_triggers_do_not_fire() -> None:
    quiet = POLICY.model_copy(update={"drift_trigger": False, "performance_trigger": False,
                                      "min_new_labeled_rows": 0})
    facts = RetrainFacts(**CHAMPION, labeled_rows=10**6, drifted_features=list("abcdef"), max_psi=1.0,
                         live_metric=0.5)
    assert not decide(quiet, facts).retrain


def test_the_reason_for_no_retrain_names_what_is_on_and_sets_apart_what_is_off() -> None:
    drift_off = POLICY.model_copy(update={"drift_trigger": False})
    facts = RetrainFacts(**CHAMPION, labeled_rows=10, drifted_features=list("abcdef"), max_psi=5.6, live_metric=0.71)
    reason = decide(drift_off, facts).reason
    on, off = reason.split(". Off: ")
    assert on == ("no trigger fired: 10 of 1,000 new labeled rows; live AUC 0.7100, 0.0100 worse than its "
                  "evaluation's 0.7200 (retrains past 0.03)")
    assert off == "drift: 6 input(s) of the prediction mix over PSI 0.25 (retrains past 2)"


def test_retrain_sensor_on_the_instance_requests_with_reasons_then_cools_down(landed) -> None:
    paths, instance = landed["paths"], landed["instance"]
    eager = RetrainPolicy(min_new_labeled_rows=500, cooldown_minutes=30)
    requested, why, _ = _tick(retrain_sensor, instance, paths, retrain_policy=eager)
    assert len(requested) == 2, why
    request, live = requested
    assert request.job_name == "retrain" and request.tags["mlplatform/trigger"] == "retrain:no_champion"
    # The same decision retrains the live model, in a run of its own.
    assert live.job_name == "retrain_live" and live.tags == request.tags and live.run_key == f"{request.run_key}:live"
    figures = json.loads(request.tags["mlplatform/retrain_figures"])
    assert figures["labeled_rows"] > 500 and figures["newest_day"] == "2013-01-04"
    assert "no champion yet" in request.tags["mlplatform/retrain_reason"]
    decisions = (paths.home / "retrain_decisions.jsonl").read_text().splitlines()
    assert json.loads(decisions[-1])["trigger"] == "no_champion"

    _, skipped, _ = _tick(retrain_sensor, instance, paths,
                          retrain_policy=RetrainPolicy(min_new_labeled_rows=10**7, min_first_model_rows=10**7))
    assert "no trigger" in skipped.skip_message and "of 10,000,000 new labeled rows" in skipped.skip_message

    # A retrain ran a minute ago: the same trigger now waits for the cooldown.
    from mlplatform.definitions import defs

    run = instance.create_run_for_job(job_def=defs.resolve_job_def("retrain"), status=dg.DagsterRunStatus.SUCCESS)
    try:
        _, skipped, _ = _tick(retrain_sensor, instance, paths, retrain_policy=eager)
        assert skipped.skip_message.startswith("cooling down")
    finally:
        instance.delete_run(run.run_id)

    # A refresh still running: the decision waits for the drift and performance it will record.
    refresh = instance.create_run_for_job(job_def=defs.resolve_job_def("daily_refresh"),
                                          status=dg.DagsterRunStatus.STARTED)
    try:
        _, skipped, _ = _tick(retrain_sensor, instance, paths, retrain_policy=eager)
        assert skipped.skip_message == f"waiting for the refresh run {refresh.run_id[:8]} to finish"
    finally:
        instance.delete_run(refresh.run_id)


def test_population_stability_index() -> None:
    import numpy as np

    from mlplatform.ml.drift import psi

    rng = np.random.default_rng(0)
    reference = pd.Series(rng.normal(0, 1, 20_000))
    assert psi(reference, pd.Series(rng.normal(0, 1, 5_000)), categorical=False) < 0.01
    assert psi(reference, pd.Series(rng.normal(1, 1, 5_000)), categorical=False) > 0.25
    # Values going missing is drift too.
    assert psi(reference, pd.Series([np.nan] * 5_000), categorical=False) > 1
    carriers = pd.Series(["UA"] * 500 + ["DL"] * 500)
    assert psi(carriers, pd.Series(["UA"] * 50 + ["DL"] * 50), categorical=True) < 0.01
    assert psi(carriers, pd.Series(["UA"] * 95 + ["ZZ"] * 5), categorical=True) > 0.25


def test_drift_profile_is_kept_beside_the_training_set_and_refitted_when_unusable(tmp_path) -> None:
    import numpy as np

    from mlplatform.ml.drift import fit_profile, load_profile, psi, psi_by_feature, save_profile

    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"delay": rng.normal(0, 1, 10_000), "carrier": rng.choice(["UA", "DL", None], 10_000)})
    current = pd.DataFrame({"delay": rng.normal(0.5, 1, 500), "carrier": rng.choice(["UA", "ZZ"], 500)})
    path = tmp_path / "drift_profile.json"
    save_profile(path, fit_profile(reference, ["delay"], ["carrier"]))
    kept = load_profile(path, ["delay", "carrier"])
    assert kept is not None
    # The kept profile gives what binning the training set afresh gives.
    assert psi_by_feature(kept, current) == {
        "carrier": psi(reference["carrier"], current["carrier"], categorical=True),
        "delay": psi(reference["delay"], current["delay"], categorical=False)}
    assert list(psi_by_feature(kept, current)) == sorted(psi_by_feature(kept, current),
                                                          key=lambda c: -psi_by_feature(kept, current)[c])
    # Other features asked for, or a damaged file: no profile, so the caller fits it again.
    assert load_profile(path, ["delay"]) is None
    path.write_text('{"format": 1, "features": {"delay": {"edges": [')
    assert load_profile(path, ["delay", "carrier"]) is None
    assert load_profile(tmp_path / "missing.json", ["delay"]) is None


def test_pipeline_loads_consecutive_days_in_one_run_and_a_bad_day_alone(tmp_path_factory) -> None:
    from mlplatform.automation.landing import plan_landing_runs
    from mlplatform.pipeline import load_landed_files

    with module_home(tmp_path_factory, "ranged") as paths:
        zone = LandingZone(paths.landing, paths.quarantine)
        Replayer(zone).replay(through=date(2013, 1, 4))
        state = PlatformState(home=str(paths.home))
        [reference, days] = plan_landing_runs(zone, {}, ranges=True).run_requests
        assert reference.job_name == "raw_reference" and days.partition_key is None
        assert (days.tags["dagster/asset_partition_range_start"], days.tags["dagster/asset_partition_range_end"]) \
            == ("2013-01-01", "2013-01-04")

        zone.file("flights", "2013-01-03").write_text("year,month\n2013,1\n")  # breaks the contract
        with dg.instance_for_test(temp_dir=str(paths.dagster_home)) as instance:
            outcomes = []

            def execute(request: dg.RunRequest) -> bool:
                result = _execute(instance, request)
                outcomes.append((request.partition_key or request.tags.get("dagster/asset_partition_range_start"),
                                 result.success))
                return result.success

            load_landed_files(instance, state, execute)
            # The range failed on the bad file, then each day ran alone: only the bad one failed.
            assert outcomes == [(None, True), ("2013-01-01", False), ("2013-01-01", True), ("2013-01-02", True),
                                ("2013-01-03", False), ("2013-01-04", True)]
            assert zone.quarantined("flights", "2013-01-03") and not zone.file("flights", "2013-01-03").exists()
            stored = instance.get_latest_storage_id_by_partition(dg.AssetKey("raw_flights"),
                                                                 dg.DagsterEventType.ASSET_MATERIALIZATION)
            assert sorted(stored) == ["2013-01-01", "2013-01-02", "2013-01-04"]

            # Nothing is loaded twice: the same files, a fresh cursor (the lake holds their bytes).
            load_landed_files(instance, state, execute)
            assert len(outcomes) == 6

            # A range run records every day, and the lake keeps each day's source checksum.
            Replayer(zone).replay(through=date(2013, 1, 6))
            load_landed_files(instance, state, execute)
            assert outcomes[-1] == ("2013-01-05", True)
            stored = instance.get_latest_storage_id_by_partition(dg.AssetKey("raw_weather"),
                                                                 dg.DagsterEventType.ASSET_MATERIALIZATION)
            assert {"2013-01-05", "2013-01-06"} <= set(stored)
            assert state.lake.source_sha256("weather", "2013-01-06") is not None


def test_a_refresh_scores_only_once_a_champion_is_held() -> None:
    """A first challenger the gate refused records the decision with no champion: the daily refresh
    then leaves scoring out instead of failing every day on it."""
    from mlplatform.automation.deployments import dagster_champion

    key = dg.AssetKey("deployed_model")
    with dg.DagsterInstance.ephemeral() as instance:
        assert dagster_champion(instance, key) is None
        instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata={
            "action": "refused", "challenger_version": 1, "reason": "not deployed: failed: ..."}))
        assert dagster_champion(instance, key) is None
        instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata={
            "action": "promoted", "champion_version": 2}))
        assert dagster_champion(instance, key) == 2
        instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata={  # refused, the champion stays
            "action": "refused", "challenger_version": 3, "champion_version": 2}))
        assert dagster_champion(instance, key) == 2
