"""The dbt project, prepared ahead of time: the code location reads a manifest, never parses dbt.

`mlplatform prepare` (which `make run` calls) and the test suite write the manifest with
`prepare_manifest()`; under `dagster dev`, each process that loads the code re-parses when a model
changed, so edits show up on the next reload.

The manifest is shared by every process of the checkout (a `dagster dev`, a headless pipeline on
another state directory, a test), and dagster-dbt reads it without a lock: dbt writes it in place,
so a parse runs in a directory of its own and the new manifest replaces the old in one rename.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import tempfile
from functools import cache, cached_property
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliResource, DbtProject
from dagster_dbt.dbt_project import using_dagster_dev
from packaging import version

from mlplatform.state import project_root

DBT_PROJECT_DIR = project_root() / "dbt_project"
# Files whose change calls for a new manifest.
_SOURCES = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "tests")

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def _newest_source_mtime() -> float:
    """The newest change to the project's sources: a file's edit, or a folder's (a file or a use
    case's folder added, removed or renamed there, which leaves no file newer)."""
    newest = 0.0
    for name in _SOURCES:
        path = DBT_PROJECT_DIR / name
        if path.exists():
            newest = max([newest, *(p.stat().st_mtime for p in [path, *path.rglob("*")])])
    return newest


def manifest_is_current() -> bool:
    manifest = Path(dbt_project.manifest_path)
    return manifest.exists() and manifest.stat().st_mtime >= _newest_source_mtime()


def prepare_manifest(force: bool = False) -> Path:
    """Parse the dbt project into target/manifest.json unless it is already current.

    One parser at a time (a lock beside the manifest); each parses into a fresh directory, with the
    last parse's partial-parse cache, and renames its manifest into place, so a reader sees the old
    manifest or the new one, never half of one."""
    manifest = Path(dbt_project.manifest_path)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with open(manifest.parent / ".parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if force or not manifest_is_current():
            with tempfile.TemporaryDirectory(prefix=".parse-", dir=manifest.parent) as scratch:
                cache = manifest.parent / "partial_parse.msgpack"
                if cache.exists():
                    shutil.copy2(cache, Path(scratch) / cache.name)
                dbt_cli_resource().cli(["parse", "--quiet"], target_path=Path(scratch)).wait()
                for name in ("partial_parse.msgpack", "semantic_manifest.json", "manifest.json"):
                    if (Path(scratch) / name).exists():
                        os.replace(Path(scratch) / name, manifest.parent / name)
    return manifest


def prepare_if_dev() -> None:
    """Under `dagster dev`, a model edited since the last parse is parsed again when the code loads."""
    if using_dagster_dev():
        prepare_manifest()


def require_manifest() -> Path:
    manifest = Path(dbt_project.manifest_path)
    if not manifest.exists():
        raise RuntimeError(f"the dbt manifest {manifest} is missing: run `mlplatform prepare` "
                           "(make run and make test do) to parse the dbt project")
    return manifest


def dbt_code_version(manifest_path: Path | None = None) -> str:
    """A hash of every model's and seed's SQL and config, as dbt itself checksums them."""
    import hashlib
    import json

    manifest = json.loads(Path(manifest_path or require_manifest()).read_text())
    digest = hashlib.sha256()
    for unique_id, node in sorted(manifest["nodes"].items()):
        if node["resource_type"] in ("model", "seed"):
            digest.update(f"{unique_id}:{node['checksum']['checksum']}\n".encode())
    return digest.hexdigest()[:16]


class PlatformDbtCli(DbtCliResource):
    """dagster-dbt's CLI resource without two costs the platform does not use, seconds a run in
    all (benchmarks/one_new_day.py; docs/benchmarks.md): before each invocation it runs `dbt --version` in a
    subprocess, and it opens a dbt adapter on the warehouse for `fetch_row_counts()` and
    `fetch_column_metadata()`, which the platform does not call (row counts come from the exports).
    Both are private methods of dagster-dbt 0.29; tests/test_transform.py checks they still exist."""

    @cached_property
    def _cli_version(self) -> version.Version:
        # The executable beside this Python is the installed dbt-core: ask the package metadata.
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            return version.parse(installed_version("dbt-core"))
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args: Any) -> None:  # type: ignore[override]
        return None


def dbt_cli_resource() -> DbtCliResource:
    # The dbt installed beside this Python, even when its bin/ is not on PATH (a bare venv python).
    beside = Path(sys.executable).with_name("dbt")
    executable = str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")
    return PlatformDbtCli(project_dir=dbt_project, dbt_executable=executable)


def longest_lookback_days(dbt_folder: str) -> int:
    """The longest trailing window of a use case's daily models (their `meta.lookback_days`, as the
    partition mappings read it): a day's build reads this many days before it, so a corrected day
    also changes the days after it, up to this many. 0 when none reads earlier days."""
    manifest = require_manifest()
    return _longest_lookback_days(str(manifest), manifest.stat().st_mtime_ns, dbt_folder)


@cache
def _longest_lookback_days(manifest: str, modified: int, dbt_folder: str) -> int:
    # Keyed by the manifest's modification: a sensor asks every tick, the manifest changes on a parse.
    import json

    nodes = json.loads(Path(manifest).read_text())["nodes"].values()
    return max((int(((n.get("config") or {}).get("meta") or {}).get("lookback_days") or 0) for n in nodes
                if n["resource_type"] == "model" and n["original_file_path"].split("/")[1:2] == [dbt_folder]
                and "daily" in (n.get("tags") or [])), default=0)


def use_case_vars(use_case) -> dict[str, str]:
    """The dbt vars every build of a use case passes, from its spec's calendar: the time zone its
    days are local to (`local_timezone`), and the start of its first day (`reference_valid_from`,
    as UTC), before any event of its feed, from when its reference rows are valid."""
    from datetime import datetime, time, timezone
    from zoneinfo import ZoneInfo

    calendar = use_case.calendar
    start = datetime.combine(calendar.first_day, time(), tzinfo=ZoneInfo(calendar.timezone)).astimezone(timezone.utc)
    return {"local_timezone": calendar.timezone, "reference_valid_from": f"{start:%Y-%m-%d %H:%M:%S}+00"}


prepare_if_dev()
