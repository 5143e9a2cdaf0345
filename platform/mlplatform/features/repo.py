"""The Feast feature repository (`feature_repo/`) as the platform uses it.

Feast is imported inside the functions: it costs seconds to import, and only the feature assets
need it. Paths in the repository come from MLPLATFORM_HOME, so the store is always opened for a
given state directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mlplatform.state import StatePaths, project_root

if TYPE_CHECKING:
    from feast import FeatureStore

FEATURE_REPO = project_root() / "feature_repo"
# What the definitions read besides their own files: the use cases' specs (a Feast file takes its
# service's name from its spec) and the code they run at retrieval time (such as on-demand features).
_DEFS = Path(__file__).parents[1].joinpath("defs")
_DEFINITION_CODE = (*sorted([*_DEFS.rglob("*.py"), *_DEFS.rglob("defs.yaml")]), Path(__file__).with_name("service.py"))
APPLIED_FILE = "applied_definitions.json"


def definitions_hash() -> str:
    """Changes whenever the feature definitions (or the code they call) change."""
    digest = hashlib.sha256()
    files = sorted([*FEATURE_REPO.glob("*.py"), store_yaml()])
    for path in [*files, *_DEFINITION_CODE]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def store_yaml() -> Path:
    """The profile's Feast configuration: `feature_store.yaml` (SQLite online store, file registry)
    or `feature_store.production.yaml` (Redis, SQL registry in PostgreSQL)."""
    from mlplatform.profile import current

    return FEATURE_REPO / current().feast_yaml


def open_store(paths: StatePaths) -> FeatureStore:
    from feast import FeatureStore

    paths.activate()  # the configuration and the sources' paths expand MLPLATFORM_HOME and the profile's settings
    paths.feast.mkdir(parents=True, exist_ok=True)
    return FeatureStore(repo_path=str(FEATURE_REPO), fs_yaml_file=store_yaml())


def applied_hash(paths: StatePaths) -> str | None:
    from mlplatform.profile import current

    record = paths.feast / APPLIED_FILE
    if not record.exists() or (not current().production and not (paths.feast / "registry.db").exists()):
        return None
    return json.loads(record.read_text()).get("definitions_hash")


def apply_definitions(paths: StatePaths) -> dict:
    """`feast apply` for this state directory; records the definitions' hash it applied."""
    from feast import FeatureStore, Project
    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total_with_repo_instance, parse_repo

    open_store(paths)  # sets the environment the repository reads
    if str(FEATURE_REPO) not in sys.path:
        sys.path.insert(0, str(FEATURE_REPO))  # Feast imports the repository's files as modules
    # ... and a module imported before, for another state directory, would keep that directory's
    # source paths: import them afresh.
    for module in FEATURE_REPO.glob("*.py"):
        sys.modules.pop(module.stem, None)
    config = load_repo_config(FEATURE_REPO, store_yaml())
    cwd = os.getcwd()
    os.chdir(FEATURE_REPO)  # Feast imports the files as modules of the working directory
    try:
        # Parsed once (it imports every file), checked, then applied: `feast apply`'s own steps.
        repo = parse_repo(FEATURE_REPO)
        check_sources(repo.feature_views)  # before anything is applied
        if not repo.projects:  # the project is the one feature_store.yaml names
            repo.projects.append(Project(name=config.project, description=""))
        store = FeatureStore(config=config)
        apply_total_with_repo_instance(store, config.project, store.registry, repo, skip_source_validation=True)
    finally:
        os.chdir(cwd)
    applied = {"definitions_hash": definitions_hash()}
    (paths.feast / APPLIED_FILE).write_text(json.dumps(applied))
    return applied


class FeatureDefinitionError(ValueError):
    """A feature view that does not fit the table it reads; the message names both and the column."""


def check_sources(views) -> None:
    """Every feature view over an exported table names columns that table has: its features, its
    join keys and its timestamp (a column renamed by the source's `field_mapping` by its own name).
    Feast applies a view without looking at its files, and a misspelt feature would only surface
    as a failed retrieval, or be served as missing. A table not exported yet is checked next time."""
    import glob

    import pyarrow.parquet as pq
    from feast import FileSource

    problems = []
    for view in views:
        source = view.batch_source
        if not isinstance(source, FileSource):
            continue
        files = sorted(glob.glob(source.path))
        if not files:
            continue
        columns = set(pq.read_schema(files[-1]).names)
        by_feature = {feature: column for column, feature in (source.field_mapping or {}).items()}
        wanted = dict.fromkeys([*(f.name for f in view.features), *view.join_keys, source.timestamp_field])
        missing = [name for name in wanted if by_feature.get(name, name) not in columns]
        if missing:
            problems.append(f"feature view {view.name!r} reads {', '.join(map(repr, missing))}, which its source "
                            f"{source.name!r} ({files[-1]}) does not have (its columns: {', '.join(sorted(columns))})")
    if problems:
        raise FeatureDefinitionError("; ".join(problems) + ". Nothing was applied: fix feature_repo/ (or the dbt "
                                     "model that exports the table) and run again")
