"""The code location: one Definitions, stage groups, kinds, and a fast import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from mlplatform.definitions import defs

ROOT = Path(__file__).resolve().parents[1]
RAW = ["raw_airlines", "raw_airports", "raw_flights", "raw_planes", "raw_weather"]


def _specs() -> dict[str, dg.AssetSpec]:
    return {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}


@pytest.mark.fast
def test_raw_stage_assets_are_grouped_described_and_kinded() -> None:
    specs = _specs()
    raw = sorted(k for k, s in specs.items() if s.group_name == "raw")
    assert raw == RAW
    for key in raw:
        assert specs[key].description
        assert {"python", "parquet"} <= set(specs[key].kinds)
    assert specs["raw_flights"].partitions_def is not None
    assert specs["raw_planes"].partitions_def is None
    keys = specs["raw_flights"].partitions_def.get_partition_keys()
    assert keys[0] == "2013-01-01" and keys[-1] == "2013-12-31" and len(keys) == 365


@pytest.mark.fast
def test_every_asset_is_described_in_words_not_sql() -> None:
    """The UI previews an asset's description: the dbt models' come from their YAML, without the
    SQL that dagster-dbt would append."""
    specs = _specs()
    dbt = {k: s for k, s in specs.items() if "dbt" in s.kinds}
    assert "fct_flights" in dbt and "feat_origin_weather" in dbt
    for key, spec in specs.items():
        assert spec.description and "Raw SQL" not in spec.description and "{{" not in spec.description, key
    assert dbt["fct_flights"].description.startswith("One row per scheduled departure")


@pytest.mark.fast
def test_every_raw_asset_has_its_contract_checks() -> None:
    checks = {(k.asset_key.to_user_string(), k.name) for k in defs.resolve_asset_graph().asset_check_keys}
    for key in RAW:
        assert (key, "conforms_to_contract") in checks
        assert (key, "rejected_rows_within_limit") in checks


@pytest.mark.parametrize("use_case", ["flights", "customer_spend"])
def test_loading_the_code_location_imports_no_heavy_library(use_case) -> None:
    """Every process of the platform (the webserver's, the daemon's, each run's) loads the code
    location: the libraries of the steps are imported by the steps that use them."""
    heavy = ("torch", "mlflow", "feast", "sklearn", "pandas", "pyarrow", "numpy", "duckdb")
    code = f"import sys, mlplatform.definitions; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "MLPLATFORM_USE_CASES": use_case})
    assert out.stdout.strip() == ""


def test_feast_imports_pytorch_only_when_it_asks_for_it(tmp_path) -> None:
    """A process that imports Feast through the platform does not import PyTorch with it (it costs
    seconds in each: lazy_torch.py); Feast's own `get_torch` still hands PyTorch over. And a process
    that ends without its exit handlers, as a killed one does, leaves no folder of Feast's metrics
    behind: every process shares one. Arrow, which Feast imports, allocates from the C library's heap,
    which NumPy and PyTorch reuse (mlplatform/__init__.py says why)."""
    code = ("import os, sys, mlplatform, feast; from feast.feature_store import FeatureStore; before = 'torch' in sys.modules; "
            "from feast.torch_wrapper import get_torch, TORCH_AVAILABLE; import pyarrow; "
            "print(before, TORCH_AVAILABLE, get_torch().tensor([1.0]).sum().item(), "
            "pyarrow.default_memory_pool().backend_name, flush=True); os._exit(0)")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PROMETHEUS_MULTIPROCESS_DIR", "PROMETHEUS_MULTIPROC_DIR", "ARROW_DEFAULT_MEMORY_POOL")}
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**env, "TMPDIR": str(tmp_path)})
        assert out.stdout.split() == ["False", "True", "1.0", "system"], out.stderr[-2000:]
    assert [p.name for p in tmp_path.iterdir()] == [f"mlplatform-feast-metrics-{os.getuid()}"]


def test_dagster_validates_the_workspace(paths) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(paths.dagster_home)}
    dagster = Path(sys.executable).with_name("dagster")
    out = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "All code locations passed validation" in out.stderr + out.stdout


@pytest.mark.fast
def test_trailing_windows_are_partition_mappings_in_the_graph():
    """A model whose windows read earlier days (dbt meta lookback_days) depends on those days of its
    daily parents, so Dagster knows a corrected day feeds the days after it."""
    from mlplatform.warehouse.project import longest_lookback_days

    graph = defs.resolve_asset_graph()
    stats = dg.AssetKey("feat_route_delay_stats")
    [parent] = [p for p in graph.get(stats).parent_keys if p.to_user_string() == "int_flight_outcomes_daily"]
    mapping = graph.get_partition_mapping(stats, parent)
    assert isinstance(mapping, dg.TimeWindowPartitionMapping)
    assert mapping.start_offset == -longest_lookback_days("flights") == -28 and mapping.end_offset == 0
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        graph.get(stats).partitions_def.subset_with_partition_keys(["2013-03-01"]),
        graph.get(parent).partitions_def, graph.get(parent).partitions_def).partitions_subset
    assert "2013-02-01" in upstream.get_partition_keys() and "2013-03-01" in upstream.get_partition_keys()
    # A model without trailing windows reads its own day only.
    calendar = dg.AssetKey("feat_flight_calendar")
    assert all(getattr(graph.get_partition_mapping(calendar, p), "start_offset", 0) == 0
               for p in graph.get(calendar).parent_keys)


@pytest.mark.fast
def test_a_setting_that_does_not_exist_is_named_not_ignored(monkeypatch) -> None:
    """`MLPLATFORM_RETRAIN_<FIELD>` overrides a field; a misspelled (or renamed) one is an error that
    names it and the real ones, not a silent default."""
    from mlplatform.profile import ProfileError
    from mlplatform.resources import RetrainPolicy, settings_from_env

    monkeypatch.setenv("MLPLATFORM_RETRAIN_COOLDOWN_MINUTES", "7")
    assert settings_from_env(RetrainPolicy, "MLPLATFORM_RETRAIN").cooldown_minutes == 7
    monkeypatch.setenv("MLPLATFORM_RETRAIN_MIN_NEW_LABELED_FLIGHT", "500")
    with pytest.raises(ProfileError) as refused:
        settings_from_env(RetrainPolicy, "MLPLATFORM_RETRAIN")
    assert "MLPLATFORM_RETRAIN_MIN_NEW_LABELED_FLIGHT: not a setting of RetrainPolicy" in str(refused.value)
    assert "MLPLATFORM_RETRAIN_MIN_NEW_LABELED_ROWS" in str(refused.value)


@pytest.mark.fast
def test_a_setting_with_a_wrong_value_names_its_variable_and_rule(monkeypatch) -> None:
    from mlplatform.profile import TRAINING_QUEUE_ENV, ProfileError
    from mlplatform.resources import RetrainPolicy, TrainingDevice, settings_from_env

    # A wrong default (a use case's spec gives some) is named as the field it set.
    with pytest.raises(ProfileError, match="RetrainPolicy.cooldown_minutes='later': Input should be a valid number"):
        settings_from_env(RetrainPolicy, "MLPLATFORM_RETRAIN", cooldown_minutes="later")
    monkeypatch.setenv("MLPLATFORM_RETRAIN_COOLDOWN_MINUTES", "soon")
    with pytest.raises(ProfileError, match="MLPLATFORM_RETRAIN_COOLDOWN_MINUTES='soon': Input should be a valid number"):
        settings_from_env(RetrainPolicy, "MLPLATFORM_RETRAIN")
    # The training queue is the Celery executor's variable under the same prefix, not an unknown setting.
    monkeypatch.setenv(TRAINING_QUEUE_ENV, "gpu")
    monkeypatch.setenv("MLPLATFORM_TRAINING_CPU_THREADS", "2")
    assert settings_from_env(TrainingDevice, "MLPLATFORM_TRAINING", read_elsewhere=(TRAINING_QUEUE_ENV,)).cpu_threads == 2
    monkeypatch.setenv("MLPLATFORM_TRAINING_CPU_THREADS", "-1")
    with pytest.raises(ProfileError, match="MLPLATFORM_TRAINING_CPU_THREADS='-1': Input should be greater than or equal to 0"):
        settings_from_env(TrainingDevice, "MLPLATFORM_TRAINING", read_elsewhere=(TRAINING_QUEUE_ENV,))


@pytest.mark.fast
def test_feast_checks_its_arguments_when_called_not_when_imported() -> None:
    """In a platform process, `import feast` instruments only the typeguard-checked functions it
    calls (two constructors, for module constants), not the hundreds it decorates (typeguard parses
    a function's whole module for each); each is instrumented at its first call, and a wrong
    argument is still refused by typeguard's own check."""
    code = """
import mlplatform, typeguard, typeguard._decorators as decorators
instrumented = []
real = decorators.instrument
decorators.instrument = lambda f: instrumented.append(f.__qualname__) or real(f)
import feast
from feast.types import Float32
at_import = len(instrumented)
feast.Field(name="fine", dtype=Float32)
try:
    feast.Field(name=1, dtype=Float32)
except typeguard.TypeCheckError as refused:
    print(at_import, sorted(set(instrumented)), refused)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    at_import, rest = out.stdout.split(" ", 1)
    assert int(at_import) < 10
    assert "'Field.__init__'" in rest and 'argument "name" (int) is not an instance of str' in rest


@pytest.mark.fast
def test_every_dbt_build_gets_the_use_cases_calendar_as_vars():
    """The time zone and the start of the first day come from the use case's spec, not from the
    shared dbt project: a use case east of UTC starts the day before in UTC."""
    from mlplatform.usecases import UseCaseSpec, load
    from mlplatform.warehouse.project import longest_lookback_days, use_case_vars

    assert use_case_vars(load("flights")) == {"local_timezone": "America/New_York",
                                              "reference_valid_from": "2013-01-01 05:00:00+00"}
    tokyo = UseCaseSpec.model_validate(load("customer_spend").model_dump())
    tokyo.calendar.timezone = "Asia/Tokyo"
    assert use_case_vars(tokyo)["reference_valid_from"] == "1996-12-31 15:00:00+00"
    # Customer spend's models read no earlier days (their 90 days are the label's, not a window).
    assert longest_lookback_days("customer_spend") == 0


@pytest.mark.fast
def test_a_removed_or_renamed_model_makes_the_manifest_stale(tmp_path, monkeypatch) -> None:
    """Removing a model or a use case's folder leaves no file newer than the manifest: the folder's
    own change counts, so the code location does not load models that are gone."""
    from mlplatform.warehouse import project

    models = tmp_path / "models"
    (models / "spend").mkdir(parents=True)
    (models / "spend" / "fct_spend.sql").write_text("select 1 as x")
    (models / "flights.sql").write_text("select 2 as x")
    (tmp_path / "dbt_project.yml").write_text("name: x\n")
    for path in [tmp_path / "dbt_project.yml", models, *models.rglob("*")]:
        os.utime(path, (1_000_000, 1_000_000))
    monkeypatch.setattr(project, "DBT_PROJECT_DIR", tmp_path)
    assert project._newest_source_mtime() == 1_000_000
    (models / "flights.sql").rename(models / "flights_v2.sql")  # a rename keeps the file's own time
    assert project._newest_source_mtime() > 1_000_000
    os.utime(models, (1_000_000, 1_000_000))
    for path in (models / "spend").iterdir():
        path.unlink()
    (models / "spend").rmdir()
    assert project._newest_source_mtime() > 1_000_000
