"""Use cases: the plug-ins the machinery runs (`spec.py` says what one declares).

Which use cases run is one line of configuration, `[tool.mlplatform] use_cases` in pyproject.toml
(or `MLPLATFORM_USE_CASES=a,b` in the environment); each is read from
`platform/mlplatform/defs/<name>/defs.yaml`.
"""

from __future__ import annotations

import os
import tomllib
from functools import cache
from pathlib import Path

from mlplatform.usecases.spec import BINARY, REGRESSION, UseCaseSpec

__all__ = ["BINARY", "REGRESSION", "UseCase", "UseCaseSpec", "UseCaseError", "active", "enabled", "enabled_names", "load"]

DEFS_DIR = Path(__file__).resolve().parents[1] / "defs"
SPEC_FILE = "defs.yaml"
COMPONENT_TYPE = "mlplatform.usecases.UseCase"
USE_CASES_ENV = "MLPLATFORM_USE_CASES"


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
    return [load(name) for name in enabled_names()]


def active() -> UseCaseSpec:
    """The use case the code location builds (the first enabled one)."""
    return enabled()[0]


def __getattr__(name: str):
    # The component class loads Dagster: only when asked for (`type: mlplatform.usecases.UseCase`).
    if name == "UseCase":
        from mlplatform.usecases.component import UseCase

        return UseCase
    raise AttributeError(name)
