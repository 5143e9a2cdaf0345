"""Use cases: the plug-ins the machinery runs (`spec.py` says what one declares).

Which use cases run is one line of configuration, `[tool.mlplatform] use_cases` in pyproject.toml
(or `MLPLATFORM_USE_CASES=a,b` in the environment); each is read from
`platform/mlplatform/defs/<name>/defs.yaml`.

A process serves one use case: the one `MLPLATFORM_USE_CASE` names, else the first enabled. Several
enabled run side by side as one code location each in the one workspace, on one Dagster instance
and state directory (`mlplatform.locations`); the commands run once per use case.
"""

from __future__ import annotations

import os
import tomllib
from functools import cache
from pathlib import Path

from mlplatform.usecases.spec import BINARY, REGRESSION, UseCaseSpec

__all__ = ["BINARY", "REGRESSION", "UseCase", "UseCaseSpec", "UseCaseError", "active", "enabled", "enabled_names",
           "load", "named"]

DEFS_DIR = Path(__file__).resolve().parents[1] / "defs"
SPEC_FILE = "defs.yaml"
COMPONENT_TYPE = "mlplatform.usecases.UseCase"
USE_CASES_ENV = "MLPLATFORM_USE_CASES"
# The use case this process serves, of those enabled (set for each code location and each command
# that runs once per use case).
USE_CASE_ENV = "MLPLATFORM_USE_CASE"


class UseCaseError(ValueError):
    """A use case that cannot be loaded; the message names the file or setting and the problem."""


def _configured() -> tuple[list[str], str]:
    """The enabled names and where they were read."""
    return _configured_by(os.environ.get(USE_CASES_ENV, "").strip())


@cache
def _configured_by(value: str) -> tuple[list[str], str]:
    if value:
        return [n.strip() for n in value.split(",") if n.strip()], USE_CASES_ENV
    from mlplatform.state import project_root

    pyproject = project_root() / "pyproject.toml"
    try:
        config = tomllib.loads(pyproject.read_text())["tool"]["mlplatform"]
        return list(config["use_cases"]), f"{pyproject} [tool.mlplatform] use_cases"
    except FileNotFoundError:
        raise UseCaseError(f"no {pyproject} to read [tool.mlplatform] use_cases from: set {USE_CASES_ENV}") from None
    except (KeyError, TypeError, tomllib.TOMLDecodeError) as err:
        raise UseCaseError(f"{pyproject}: [tool.mlplatform] use_cases must list the enabled use cases "
                           f"({type(err).__name__}: {err})") from None


def enabled_names() -> list[str]:
    names, where = _configured()
    if not names:
        raise UseCaseError(f"{where} enables no use case: name at least one folder of {DEFS_DIR}")
    return names


@cache
def load(name: str) -> UseCaseSpec:
    """The use case declared in `defs/<name>/defs.yaml`."""
    import yaml
    from pydantic import ValidationError

    path = DEFS_DIR / name / SPEC_FILE
    if not path.exists():
        known = sorted(p.parent.name for p in DEFS_DIR.glob(f"*/{SPEC_FILE}"))
        raise UseCaseError(f"no use case {name!r}: {path} does not exist (use cases here: {', '.join(known) or 'none'})")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UseCaseError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(document, dict) or document.get("type") != COMPONENT_TYPE:
        raise UseCaseError(f"{path}: must be a component instance with `type: {COMPONENT_TYPE}` and `attributes:`")
    try:
        spec = UseCaseSpec(**(document.get("attributes") or {}))
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'attributes'}: {e['msg']}" for e in err.errors())
        raise UseCaseError(f"{path}: {problems}") from None
    if spec.name != name:
        raise UseCaseError(f"{path}: its name {spec.name!r} is not its folder's, {name!r}")
    return spec


def enabled() -> list[UseCaseSpec]:
    return _side_by_side(tuple(enabled_names()))


@cache
def _side_by_side(names: tuple[str, ...]) -> list[UseCaseSpec]:
    """The enabled use cases, checked to share no name: they share one Dagster instance and one
    state directory, so their namespaces (asset keys, jobs, folders) and their tables must differ."""
    if len(set(names)) < len(names):
        raise UseCaseError(f"{_configured()[1]} enables a use case twice: {', '.join(names)}")
    specs = [load(name) for name in names]
    namespaces: dict[str, str] = {}
    tables: dict[str, str] = {}
    models: dict[str, str] = {}
    for spec in specs:
        for model in (spec.model.experiment, *(line.registered_model for line in spec.model.lines)):
            if (other := models.setdefault(model, spec.name)) != spec.name:
                raise UseCaseError(f"the use cases {other!r} and {spec.name!r} both name {model!r} as an MLflow "
                                   "experiment or registered model: their runs and champions would be one; rename it "
                                   f"in {DEFS_DIR / spec.name / SPEC_FILE}")
        if (other := namespaces.setdefault(spec.key_prefix, spec.name)) != spec.name:
            raise UseCaseError(f"the use cases {other!r} and {spec.name!r} have the same namespace "
                               f"({spec.key_prefix.rstrip('_') or 'empty'}): their asset keys, jobs and state folders "
                               f"would be one; give one of them its own `namespace:` in {DEFS_DIR / spec.name / SPEC_FILE}")
        for table in (*spec.daily_tables, *spec.reference_tables):
            if (other := tables.setdefault(table, spec.name)) != spec.name:
                raise UseCaseError(f"the use cases {other!r} and {spec.name!r} both land a table {table!r}: its "
                                   f"landing folder, lake folder and raw_{table} asset would be one; rename it in one "
                                   "of their specs and contracts")
    return specs


def active() -> UseCaseSpec:
    """The use case this process serves: the one `MLPLATFORM_USE_CASE` names, else the first enabled."""
    specs = enabled()
    bound = os.environ.get(USE_CASE_ENV, "").strip()
    if not bound:
        return specs[0]
    for spec in specs:
        if spec.name == bound:
            return spec
    raise UseCaseError(f"{USE_CASE_ENV}={bound} is not an enabled use case ({_configured()[1]} enables "
                       f"{', '.join(s.name for s in specs)})")


def named(name: str) -> str:
    """The machinery's name `name` (an asset, job or sensor) for the use case this process serves:
    `<namespace>_<name>`, or `name` itself in the empty namespace."""
    return f"{active().key_prefix}{name}"


def __getattr__(name: str):
    # The component class loads Dagster: only when asked for (`type: mlplatform.usecases.UseCase`).
    if name == "UseCase":
        from mlplatform.usecases.component import UseCase

        return UseCase
    raise AttributeError(name)
