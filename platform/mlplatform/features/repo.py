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
# Code the definitions run at retrieval time (the on-demand calendar features).
_DEFINITION_CODE = (Path(__file__).with_name("calendar.py"), Path(__file__).with_name("service.py"))
APPLIED_FILE = "applied_definitions.json"


def definitions_hash() -> str:
    """Changes whenever the feature definitions (or the code they call) change."""
    digest = hashlib.sha256()
    files = sorted(p for p in FEATURE_REPO.iterdir() if p.suffix in (".py", ".yaml") and p.is_file())
    for path in [*files, *_DEFINITION_CODE]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def open_store(paths: StatePaths) -> FeatureStore:
    from feast import FeatureStore

    paths.activate()  # feature_store.yaml and the sources' paths expand MLPLATFORM_HOME
    paths.feast.mkdir(parents=True, exist_ok=True)
    return FeatureStore(repo_path=str(FEATURE_REPO))


def applied_hash(paths: StatePaths) -> str | None:
    record = paths.feast / APPLIED_FILE
    if not record.exists() or not (paths.feast / "registry.db").exists():
        return None
    return json.loads(record.read_text()).get("definitions_hash")


def apply_definitions(paths: StatePaths) -> dict:
    """`feast apply` for this state directory; records the definitions' hash it applied."""
    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total

    open_store(paths)  # sets the environment the repository reads
    if str(FEATURE_REPO) not in sys.path:
        sys.path.insert(0, str(FEATURE_REPO))  # Feast imports the repository's files as modules
    # ... and a module imported before, for another state directory, would keep that directory's
    # source paths: import them afresh.
    for module in FEATURE_REPO.glob("*.py"):
        sys.modules.pop(module.stem, None)
    config = load_repo_config(FEATURE_REPO, FEATURE_REPO / "feature_store.yaml")
    cwd = os.getcwd()
    try:
        apply_total(config, FEATURE_REPO, skip_source_validation=True)
    finally:
        os.chdir(cwd)  # apply_total changes into the repository
    applied = {"definitions_hash": definitions_hash()}
    (paths.feast / APPLIED_FILE).write_text(json.dumps(applied))
    return applied
