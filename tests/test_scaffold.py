"""`mlplatform new-use-case NAME` writes a use case that the platform can load as it is: its spec
validates, its Python compiles, its dbt models and Feast file name only its own things; it refuses a
bad name, a bad task and a use case that exists. `tests/test_scaffold_end_to_end.py` runs one to a
champion and `/predict`."""

from __future__ import annotations

import py_compile

import pytest
import yaml

from mlplatform.usecases.scaffold import ScaffoldError, scaffold
from mlplatform.usecases.spec import UseCaseSpec

pytestmark = pytest.mark.fast


@pytest.mark.parametrize("task", ["regression", "binary"])
def test_the_scaffold_writes_a_use_case_that_loads(tmp_path, task):
    written = scaffold("bikes", task=task, horizon=14, root=tmp_path)
    names = {p.relative_to(tmp_path).as_posix() for p in written}
    assert {"platform/mlplatform/defs/bikes/defs.yaml", "platform/mlplatform/defs/bikes/hooks.py",
            "dbt_project/models/bikes/marts/fct_bikes.sql", "feature_repo/bikes.py",
            "platform/mlplatform/defs/bikes/source.csv", "platform/mlplatform/defs/bikes/entities.csv",
            "dbt_project/models/bikes/features/feat_bikes_entity.sql"} <= names
    document = yaml.safe_load((tmp_path / "platform/mlplatform/defs/bikes/defs.yaml").read_text())
    assert document["type"] == "mlplatform.usecases.UseCase"
    spec = UseCaseSpec(**document["attributes"])
    assert spec.task.kind == task and spec.prediction.label_delay_days == 14
    assert spec.task.metric == ("rmse" if task == "regression" else "roc_auc")
    for path in written:
        if path.suffix == ".py":
            py_compile.compile(str(path), doraise=True)
        if path.suffix in (".sql", ".yml") or path.parent.name == "feature_repo":
            # Every dbt model, source and Feast name is the use case's own: it sits beside the others.
            text = path.read_text()
            assert "bikes" in text, path
    source = (tmp_path / "platform/mlplatform/defs/bikes/source.csv").read_text().splitlines()
    assert source[0] == "entity_id,event_date,value" and len(source) > 5000
    entities = (tmp_path / "platform/mlplatform/defs/bikes/entities.csv").read_text().splitlines()
    assert entities[0] == "entity_id,segment" and len(entities) == 301
    assert spec.reference_tables == ("bikes_entities",) and spec.model.categorical == ["bikes_entity_attrs__segment"]


def test_the_scaffold_refuses_what_it_cannot_write(tmp_path):
    scaffold("bikes", root=tmp_path)
    with pytest.raises(ScaffoldError, match="exists already"):
        scaffold("bikes", root=tmp_path)
    with pytest.raises(ScaffoldError, match="is not a use case name"):
        scaffold("Bikes-2", root=tmp_path)
    with pytest.raises(ScaffoldError, match="choose regression or binary"):
        scaffold("trips", task="ranking", root=tmp_path)
    assert not (tmp_path / "platform/mlplatform/defs/trips").exists()
