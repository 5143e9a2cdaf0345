"""Prepares a checkout to run: the state directory, the Dagster instance, the MLflow store, the dbt
manifest. Done once, under a lock, so any number of commands started at once on a new state
directory create each store exactly once (two pipelines started at once on a new directory were
seen to leave Dagster's SQLite storage with two alembic heads, for good)."""

from __future__ import annotations

import json

from mlplatform.ingest.files import write_bytes_atomically
from mlplatform.locks import file_lock
from mlplatform.model.tracking import tracking_uri
from mlplatform.profile import EMBEDDED_INSTANCE, PRODUCTION_INSTANCE, SCHEMAS, Profile, current
from mlplatform.state import StatePaths

# Written last, once every store exists: its absence means "prepare again".
PREPARED = ".prepared.json"
STORES_VERSION = 1


def prepare(paths: StatePaths) -> list[str]:
    """Create what a fresh checkout needs; keep what is already there. Says what it did."""
    from mlplatform.warehouse.project import manifest_is_current, prepare_manifest

    profile = current()
    done = [f"state directory: {paths.ensure().home}", f"profile: {profile.name}"]
    done += [f"reached {service}" for service in profile.check_services()]
    marker = paths.home / PREPARED
    with file_lock(paths.home / ".prepare.lock", what="another command preparing this state directory"):
        instance_config = paths.dagster_home / "dagster.yaml"
        wanted = profile.instance_yaml()
        if _should_write(instance_config, wanted):
            write_bytes_atomically(instance_config, wanted.encode())
            done.append(f"wrote {instance_config}")
        if not manifest_is_current():
            done.append(f"parsed the dbt project into {prepare_manifest()}")
        prepared = {"stores_version": STORES_VERSION, "profile": profile.name,
                    "postgres": profile.postgres_url and _without_password(profile.postgres_url)}
        if _prepared(marker) != prepared:
            done += _create_stores(paths, profile)
            write_bytes_atomically(marker, json.dumps(prepared).encode())
    return done


def _should_write(instance_config, wanted: str) -> bool:
    """Missing, or written by `prepare` (its first line says so) for the other profile or by an older
    version of the platform: written. A file edited by hand (its first line changed) is the
    operator's, and kept."""
    try:
        text = instance_config.read_text()
    except FileNotFoundError:
        return True
    ours = {known.split("\n", 1)[0] for known in (EMBEDDED_INSTANCE, PRODUCTION_INSTANCE)}
    return text.split("\n", 1)[0] in ours and text != wanted


def _prepared(marker) -> dict | None:
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return None


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}{parts.path}"


def _create_stores(paths: StatePaths, profile: Profile) -> list[str]:
    """Dagster's storage and MLflow's tracking store, created (and migrated) by one process; in
    production first the database's schemas, one per store."""
    import dagster as dg

    from mlplatform.model.tracking import ensure_experiment

    done = []
    if profile.production:
        import psycopg2

        with psycopg2.connect(profile.postgres_url) as con, con.cursor() as cur:
            for schema in SCHEMAS:
                cur.execute(f"create schema if not exists {schema}")
        con.close()
        done.append(f"created the schemas {', '.join(SCHEMAS)} in database {profile.database}")
    with dg.DagsterInstance.from_config(str(paths.dagster_home)) as instance:
        instance.get_runs(limit=1)
    ensure_experiment(paths)
    where = "PostgreSQL" if profile.production else str(paths.dagster_home)
    return done + [f"created the Dagster storage in {where}",
                   f"created the MLflow store in {tracking_uri(paths).split('?')[0].rsplit('@', 1)[-1]}"]
