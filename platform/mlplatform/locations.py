"""One code location per enabled use case, side by side in one workspace.

`dagster dev` (through `mlplatform dev`) loads `mlplatform.locations:<use case>` for each use case
that `[tool.mlplatform] use_cases` enables: each in a process of its own, all on one Dagster
instance (one UI, one daemon, one run queue) and one state directory. A use case's names there are
its own (`mlplatform.usecases.named`), so their assets, jobs, sensors and runs never mix.

Why one location each rather than every use case in one: a use case's hooks are its own code, and
a location is Dagster's unit of isolation. A broken hook, a slow import or a dependency one use case
needs takes down its own location, not its neighbour's, and each reloads alone. The machinery
builds a use case's definitions from module-level names, once per process, which a location's
process provides; run workers and Celery steps rebuild them from the same pointer.
"""

from __future__ import annotations

import os
import sys

import dagster as dg

from mlplatform.usecases import USE_CASE_ENV, UseCaseError, enabled_names

_MACHINERY = "mlplatform.definitions"


def bind(use_case: str) -> None:
    """Make this process serve `use_case`, before the machinery is imported: its modules read the
    use case once, at import, so a process that built one use case cannot build another."""
    if use_case not in enabled_names():
        raise UseCaseError(f"no enabled use case {use_case!r} to load (enabled: {', '.join(enabled_names())})")
    bound = os.environ.get(USE_CASE_ENV)
    if _MACHINERY in sys.modules and (bound or enabled_names()[0]) != use_case:
        raise UseCaseError(f"this process already built the use case {bound or enabled_names()[0]!r}; "
                           f"{use_case!r} loads in a process of its own (a code location each)")
    os.environ[USE_CASE_ENV] = use_case


def definitions(use_case: str) -> dg.Definitions:
    """The definitions of one enabled use case, built in this process."""
    bind(use_case)
    from mlplatform.definitions import defs

    return defs


def job_of(use_case: str, job_name: str) -> dg.JobDefinition:
    """A use case's job, rebuilt by name in another process (`dg.build_reconstructable_job`): how
    `mlplatform pipeline` hands its runs' steps to the production profile's workers."""
    return definitions(use_case).resolve_job_def(job_name)


def __getattr__(name: str) -> dg.Definitions:
    # `mlplatform.locations:<use case>`, the pointer of the use case's code location.
    if name.startswith("__") or name not in enabled_names():
        raise AttributeError(name)
    return definitions(name)


def workspace_yaml() -> str:
    """The workspace of every enabled use case: one code location each, named by it."""
    entries = "".join(f"  - python_module:\n      module_name: {__name__}\n      attribute: {name}\n"
                      f"      location_name: {name}\n" for name in enabled_names())
    return "# Written by `mlplatform dev`: one code location per enabled use case.\nload_from:\n" + entries
