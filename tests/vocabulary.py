"""The names a use case declares, and where the machinery still names them (tests/test_vocabulary.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from mlplatform.state import project_root
from mlplatform.usecases import DEFS_DIR, UseCaseSpec, load

MACHINERY = project_root() / "platform" / "mlplatform"
# Too common to mean the use case when they appear (a column named `date` is every feed's).
GENERIC = {"date", "day", "year", "month", "hour", "minute", "name", "model", "type", "key", "event_timestamp"}


def declared_names(use_case: UseCaseSpec) -> set[str]:
    """Every name the use case's spec, dbt models and Feast definitions declare."""
    spec = use_case
    names = {*spec.daily_tables, *spec.reference_tables, spec.prediction.model, spec.prediction.key,
             spec.prediction.event_time, spec.prediction.label, *spec.prediction.entity_keys,
             spec.features.service, spec.features.request_time, *spec.features.tables.daily,
             *spec.features.tables.reference, *spec.features.tables.same_day, spec.model.experiment,
             *(line.registered_model for line in spec.model.lines), *spec.model.categorical,
             *spec.model.not_inputs}
    names |= {n for n in (spec.features.same_day_service, spec.features.request_view) if n}
    models = project_root() / "dbt_project" / "models" / spec.dbt_folder
    names |= {p.stem for p in models.rglob("*.sql")}
    for path in feast_files(spec):
        names |= set(re.findall(r'\bname="([A-Za-z_][A-Za-z0-9_]*)"', path.read_text()))
        names |= {m for group in re.findall(r"join_keys=\[([^\]]*)\]", path.read_text())
                  for m in re.findall(r'"([^"]+)"', group)}
    return {n for n in names if n and n not in GENERIC}


def feast_files(spec: UseCaseSpec) -> list[Path]:
    """The use case's Feast definitions: the files of feature_repo/ that load its spec."""
    return [p for p in (project_root() / "feature_repo").glob("*.py") if f'load("{spec.name}")' in p.read_text()]


def machinery_files() -> list[Path]:
    return sorted(p for p in MACHINERY.rglob("*.py") if DEFS_DIR not in p.parents and "__pycache__" not in p.parts)


def leaks(names: set[str]) -> dict[str, list[str]]:
    """Per machinery file (relative to platform/mlplatform), the declared names it spells out."""
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")\b")
    found = {}
    for path in machinery_files():
        hits = sorted(set(pattern.findall(path.read_text())))
        if hits:
            found[str(path.relative_to(MACHINERY))] = hits
    return found


if __name__ == "__main__":  # prints the current leaks, to update the ratchet in test_vocabulary.py
    import sys

    names = set().union(*(declared_names(load(n)) for n in sys.argv[1:] or ["flights"]))
    print(json.dumps(leaks(names), indent=1))
