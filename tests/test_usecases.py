"""A use case is declared in one YAML file; a wrong one is refused with the file and the problem named."""

from __future__ import annotations


import pytest
import yaml

import mlplatform.usecases as usecases
from mlplatform.usecases import UseCaseError, load

pytestmark = pytest.mark.fast


@pytest.fixture
def defs_dir(tmp_path, monkeypatch):
    """A defs folder holding a copy of the flights spec, as `bad` (and the loader's cache emptied)."""
    target = tmp_path / "defs"
    (target / "bad").mkdir(parents=True)
    spec = yaml.safe_load((usecases.DEFS_DIR / "flights" / "defs.yaml").read_text())
    spec["attributes"]["name"] = "bad"
    monkeypatch.setattr(usecases, "DEFS_DIR", target)
    load.cache_clear()
    yield target, spec
    load.cache_clear()


def _write(target, spec) -> None:
    (target / "bad" / "defs.yaml").write_text(yaml.safe_dump(spec))


def test_the_flights_spec_loads_with_its_feeds_task_and_lines():
    flights = load("flights")
    assert flights.daily_tables == ("flights", "weather")
    assert flights.task.kind == "binary" and flights.task.higher_is_better
    assert [line.registered_model for line in flights.model.lines] == ["flight_delay", "flight_delay_live"]
    assert "CONTRACTS" in dir(flights.module)


def test_a_line_s_own_network_settings_reach_its_training_and_its_inputs():
    """The live line's `network:` settings are what it trains by, and a part of what decides that its
    inputs changed (`model/inputs.py`); the day-ahead line's settings are the model spec's alone."""
    from mlplatform.model.lines import LINES

    day_ahead, live = LINES
    assert dict(live.network) == {"patience": 6, "dropout": 0.1} and day_ahead.network == ()
    spec = {"patience": 3, "max_epochs": 30}
    assert day_ahead.settings(spec) == spec
    assert live.settings(spec) == {**spec, "network": {"patience": 6, "dropout": 0.1}}


@pytest.mark.parametrize("change, problem", [
    (lambda s: s["attributes"].update(colour="blue"), "colour: Extra inputs are not permitted"),
    (lambda s: s["attributes"]["task"].update(metric="rmse"), "task: Value error, task.metric 'rmse' is not a binary metric"),
    (lambda s: s["attributes"]["task"].update(kind="ranking"), "task.kind: Input should be 'binary' or 'regression'"),
    (lambda s: s["attributes"]["prediction"].pop("label"), "prediction.label: Field required"),
    (lambda s: s["attributes"]["prediction"].update(label_delay_days=-1), "prediction.label_delay_days"),
    (lambda s: s["attributes"].update(name="other"), "its name 'other' is not its folder's, 'bad'"),
    (lambda s: s.update(type="something.Else"), "must be a component instance with `type: mlplatform.usecases.UseCase`"),
    (lambda s: s["attributes"]["model"]["lines"][1]["network"].update(dropout=1.5),
     "model.lines.1.network.dropout: Input should be less than 1"),
    (lambda s: s["attributes"]["model"]["lines"][1]["network"].update(epochs=9),
     "model.lines.1.network.epochs: Extra inputs are not permitted"),
])
def test_a_wrong_spec_names_its_file_and_the_problem(defs_dir, change, problem):
    target, spec = defs_dir
    change(spec)
    _write(target, spec)
    with pytest.raises(UseCaseError) as raised:
        load("bad")
    assert str(target / "bad" / "defs.yaml") in str(raised.value)
    assert problem in str(raised.value)


def test_an_unknown_use_case_lists_the_known_ones(defs_dir):
    target, spec = defs_dir
    _write(target, spec)
    with pytest.raises(UseCaseError, match=r"no use case 'nope'.*use cases here: bad"):
        load("nope")


def test_broken_yaml_is_named(defs_dir):
    target, _ = defs_dir
    (target / "bad" / "defs.yaml").write_text("type: [unclosed\n")
    with pytest.raises(UseCaseError, match="not valid YAML"):
        load("bad")


def test_the_enabling_line_is_read_from_the_environment_first(monkeypatch):
    monkeypatch.setenv(usecases.USE_CASES_ENV, " flights , ")
    assert usecases.enabled_names() == ["flights"]
    monkeypatch.setenv(usecases.USE_CASES_ENV, "flights,nowhere")
    with pytest.raises(UseCaseError, match="no use case 'nowhere'"):
        usecases.enabled()


def test_the_component_class_is_the_spec_with_dagster_s_component_interface():
    import dagster as dg

    from mlplatform.usecases import UseCase

    assert issubclass(UseCase, dg.Component) and issubclass(UseCase, usecases.UseCaseSpec)


def test_a_categorical_input_the_training_set_lacks_is_named(monkeypatch):
    import pandas as pd

    from mlplatform.ml import columns

    frame = pd.DataFrame({"plane__plane_type": ["a"], "route": ["EWR-IAH"], "origin_weather__wind_speed": [3.0]})
    monkeypatch.setattr(columns, "CATEGORICAL", ("plane__plane_type", "dest_code"))
    columns.require_inputs(frame)  # dest_code is derived from the route by the use case's hooks
    monkeypatch.setattr(columns, "CATEGORICAL", ("plane__plane_typo",))
    with pytest.raises(columns.InputColumnError, match=r"names 'plane__plane_typo', which the training set does not "
                                                       r"have \(its feature columns.*plane__plane_type"):
        columns.require_inputs(frame)


def test_a_dbt_model_the_spec_names_and_its_folder_lacks_is_refused_at_load(monkeypatch):
    from mlplatform.assets import transformed
    from mlplatform.usecases import UseCaseSpec

    spec = UseCaseSpec.model_validate(load("flights").model_dump())
    nodes = transformed._use_case_nodes()
    transformed.check_declared_models(nodes)  # flights' own names are its models
    spec.features.tables.daily = [*spec.features.tables.daily, "feat_route_delay_statz"]
    monkeypatch.setattr(transformed, "active", lambda: spec)
    with pytest.raises(UseCaseError, match=r"flights/defs.yaml: features.tables.daily: 'feat_route_delay_statz': "
                                           r"no such dbt model in dbt_project/models/flights/ \(its models: .*"
                                           r"feat_route_delay_stats"):
        transformed.check_declared_models(nodes)


def test_a_command_on_a_use_case_that_does_not_exist_says_so_and_exits_2(monkeypatch, capsys):
    from mlplatform.cli import main

    monkeypatch.setenv("MLPLATFORM_USE_CASES", "nowhere_at_all")
    assert main(["status"]) == 2
    assert "no use case 'nowhere_at_all'" in capsys.readouterr().err


def test_consume_for_a_use_case_without_a_stream_says_there_is_none(monkeypatch, capsys, tmp_path):
    from mlplatform.cli import main

    monkeypatch.setenv("MLPLATFORM_USE_CASES", "customer_spend")
    monkeypatch.setenv("MLPLATFORM_HOME", str(tmp_path / "home"))
    assert main(["consume"]) == 2
    assert "the use case 'customer_spend' has no same-day stream" in capsys.readouterr().err
