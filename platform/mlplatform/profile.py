"""The deployment profile: the one place where the embedded default and production differ.

    embedded (default)  Dagster and MLflow on SQLite, the warehouse on DuckDB, Feast's online store
                        on SQLite, every step in its run's process. No server.
    production          Dagster, MLflow, Feast's registry and the warehouse (dbt-postgres) on
                        PostgreSQL; Feast's online store on Redis; steps on Celery workers, with
                        Redis as the broker.

`MLPLATFORM_PROFILE` picks one (`embedded` when unset). Production reads two connection URLs from
the environment, never from a file of the repository:

    MLPLATFORM_POSTGRES_URL   postgresql://user:password@host:5432/database
    MLPLATFORM_REDIS_URL      redis://[:password@]host:6379/0

Each store takes its own schema of that one database: Dagster `public`, MLflow `mlflow`, Feast's
registry `feast`, the raw lake `raw` and dbt's models `analytics`. Files (the landing zone, the lake,
the Parquet exports Feast's offline store reads, model artifacts) stay under MLPLATFORM_HOME, which
in production must be one volume every worker mounts.

The rest of the code asks the profile (the executor, the MLflow URI, the Feast configuration, the
dbt target, the instance configuration) instead of testing the profile's name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

PROFILE_ENV = "MLPLATFORM_PROFILE"
POSTGRES_URL_ENV = "MLPLATFORM_POSTGRES_URL"
REDIS_URL_ENV = "MLPLATFORM_REDIS_URL"
TRAINING_QUEUE_ENV = "MLPLATFORM_TRAINING_QUEUE"
EMBEDDED, PRODUCTION = "embedded", "production"
DEFAULT_QUEUE = "dagster"  # dagster-celery's queue

# The schemas of the production database, one per store (Dagster keeps `public`).
MLFLOW_SCHEMA, FEAST_SCHEMA, RAW_SCHEMA, ANALYTICS_SCHEMA = "mlflow", "feast", "raw", "analytics"
SCHEMAS = (MLFLOW_SCHEMA, FEAST_SCHEMA, RAW_SCHEMA, ANALYTICS_SCHEMA)


class ProfileError(RuntimeError):
    """The profile's configuration is wrong or names a service that cannot be used; the message
    names the setting."""


class ServiceLost(ProfileError):
    """A service of the production profile went away mid-command; the message names its setting
    and what to do."""


_COMMON_INSTANCE = """\
telemetry:
  enabled: false
# Dagster's launcher, able to tell whether a run's process is still alive: with run monitoring
# (the daemon), a run whose process died (kill -9, out of memory) is marked failed, not left
# STARTED forever, and its pool slots are freed.
run_launcher:
  module: mlplatform.automation.run_launcher
  class: LocalRunLauncher
run_monitoring:
  enabled: true
  poll_interval_seconds: 15
  start_timeout_seconds: 180
  free_slots_after_run_end_seconds: 15
# The daemon evaluates the assets' freshness policies (mlplatform/automation/freshness.py) every
# 30 s; the UI shows each asset's state.
freshness:
  enabled: true
"""

EMBEDDED_INSTANCE = f"""\
# Dagster instance configuration for the embedded default, written by `mlplatform prepare`.
# Storage is SQLite under this folder; MLPLATFORM_PROFILE=production writes the Postgres one.
concurrency:
  pools:
    # Every pool admits one step at a time: `warehouse` (DuckDB allows one writer).
    default_limit: 1
  runs:
    # Each run is a process that loads the code location: on a laptop, more at once only thrash.
    max_concurrent_runs: 2
{_COMMON_INSTANCE}"""

PRODUCTION_INSTANCE = f"""\
# Dagster instance configuration for the production profile, written by `mlplatform prepare`.
# Runs, events and schedules in PostgreSQL ({POSTGRES_URL_ENV}, read when the instance loads: no
# secret in this file); runs wait in the queue until the pools and the run limit admit them.
storage:
  postgres:
    postgres_url:
      env: {POSTGRES_URL_ENV}
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
concurrency:
  pools:
    # The same pools as the embedded default; PostgreSQL takes several writers at once, so the
    # `warehouse` pool admits several dbt builds (dbt takes a lock per model, not per warehouse).
    default_limit: 4
  runs:
    max_concurrent_runs: 8
{_COMMON_INSTANCE}"""


def _redact(url: str) -> str:
    """The URL with its password replaced, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class Profile:
    name: str = EMBEDDED
    postgres_url: str | None = None
    redis_url: str | None = None

    @classmethod
    def from_env(cls, environ: os._Environ | dict | None = None) -> "Profile":
        env = os.environ if environ is None else environ
        name = (env.get(PROFILE_ENV) or EMBEDDED).strip().lower()
        if name == EMBEDDED:
            return cls()
        if name != PRODUCTION:
            raise ProfileError(f"{PROFILE_ENV}={env.get(PROFILE_ENV)!r} is not a profile: use "
                               f"{EMBEDDED!r} (the default) or {PRODUCTION!r}")
        profile = cls(PRODUCTION, env.get(POSTGRES_URL_ENV) or None, env.get(REDIS_URL_ENV) or None)
        profile.validate()
        return profile

    @property
    def production(self) -> bool:
        return self.name == PRODUCTION

    def validate(self) -> None:
        """The settings are present and well formed (reaching the services is `check_services`)."""
        for setting, url, schemes, example in (
                (POSTGRES_URL_ENV, self.postgres_url, ("postgresql", "postgres"),
                 "postgresql://user:password@host:5432/mlplatform"),
                (REDIS_URL_ENV, self.redis_url, ("redis", "rediss"), "redis://host:6379/0")):
            if not url:
                raise ProfileError(f"{PROFILE_ENV}=production needs {setting} (for example {example})")
            parts = urlsplit(url)
            if parts.scheme not in schemes or not parts.hostname:
                raise ProfileError(f"{setting}={_redact(url)!r} is not a {schemes[0]} URL with a host "
                                   f"(for example {example})")
        if not urlsplit(self.postgres_url).path.strip("/"):
            raise ProfileError(f"{POSTGRES_URL_ENV}={_redact(self.postgres_url)!r} names no database "
                               "(…/mlplatform at its end)")
        db = urlsplit(self.redis_url).path.strip("/") or "0"
        if not db.isdigit():
            raise ProfileError(f"{REDIS_URL_ENV}={_redact(self.redis_url)!r}: the path must be a database number")

    # --- PostgreSQL -------------------------------------------------------------------------

    @cached_property
    def _pg(self):
        return urlsplit(self.postgres_url)

    def postgres_url_in_schema(self, schema: str, driver: str = "postgresql") -> str:
        """The production database's URL with `schema` first on the search path (how MLflow and
        Feast's SQL registry get a schema of their own)."""
        query = [(k, v) for k, v in parse_qsl(self._pg.query) if k != "options"]
        query.append(("options", f"-csearch_path={schema}"))
        return urlunsplit(self._pg._replace(scheme=driver, query=urlencode(query, quote_via=quote)))

    @property
    def database(self) -> str:
        return unquote(self._pg.path.strip("/"))

    # --- what each component is configured with -----------------------------------------------

    def instance_yaml(self) -> str:
        return PRODUCTION_INSTANCE if self.production else EMBEDDED_INSTANCE

    def mlflow_uri(self, mlflow_dir: Path) -> str:
        if self.production:
            return self.postgres_url_in_schema(MLFLOW_SCHEMA)
        return f"sqlite:///{mlflow_dir / 'mlflow.db'}"

    @property
    def feast_yaml(self) -> str:
        """The Feast configuration file in feature_repo/ (both read the variables `environment` sets)."""
        return "feature_store.production.yaml" if self.production else "feature_store.yaml"

    @property
    def dbt_target(self) -> str:
        return "production" if self.production else "local"

    @property
    def warehouse(self) -> str:
        """`duckdb`: dbt reads the lake in place, one writer at a time; `postgres`: the lake is
        loaded into the `raw` schema before dbt builds, and writers run at once."""
        return "postgres" if self.production else "duckdb"

    def environment(self) -> dict[str, str]:
        """The variables dbt's profiles.yml and Feast's feature_store.yaml read, derived from the
        URLs (dbt wants the connection split up, Feast's Redis store its own connection string)."""
        env = {"MLPLATFORM_DBT_TARGET": self.dbt_target}
        if not self.production:
            return env
        pg = self._pg
        env |= {"PGHOST": pg.hostname, "PGPORT": str(pg.port or 5432), "PGUSER": unquote(pg.username or ""),
                "PGPASSWORD": unquote(pg.password or ""), "PGDATABASE": self.database,
                # The warehouse's timestamps are UTC, as on DuckDB.
                "PGTZ": "UTC",
                "MLPLATFORM_FEAST_REGISTRY": self.postgres_url_in_schema(FEAST_SCHEMA, "postgresql+psycopg"),
                "MLPLATFORM_FEAST_REDIS": self.feast_redis_connection()}
        return env

    def activate(self) -> "Profile":
        os.environ.update(self.environment())
        return self

    def feast_redis_connection(self) -> str:
        """Feast's Redis connection string: `host:port,db=N[,password=…][,ssl=true]`."""
        redis = urlsplit(self.redis_url)
        parts = [f"{redis.hostname}:{redis.port or 6379}", f"db={redis.path.strip('/') or '0'}"]
        if redis.password:
            parts.append(f"password={unquote(redis.password)}")
        if redis.scheme == "rediss":
            parts.append("ssl=true")
        return ",".join(parts)

    @property
    def training_queue(self) -> str:
        """The Celery queue of the training step (MLPLATFORM_TRAINING_QUEUE; the workers' `dagster`
        queue by default, a GPU worker's queue where there is one)."""
        return os.environ.get(TRAINING_QUEUE_ENV) or DEFAULT_QUEUE

    def executor(self):
        """Where a run's steps execute: in the run's own process, or on Celery workers (any
        machine that reaches the broker, the database and MLPLATFORM_HOME)."""
        import dagster as dg

        if not self.production:
            return dg.in_process_executor
        from dagster_celery import celery_executor

        # Read from the environment where the run starts: the run's config holds no secret.
        return celery_executor.configured(
            {"broker": {"env": REDIS_URL_ENV}, "backend": {"env": REDIS_URL_ENV}}, name="celery_on_redis")

    # --- reaching the services ------------------------------------------------------------------

    def check_services(self, timeout_s: float = 5.0) -> list[str]:
        """Connect to each service; raise ProfileError naming the setting and the problem."""
        if not self.production:
            return []
        return [self._check_postgres(timeout_s), self._check_redis(timeout_s)]

    def unreachable(self, timeout_s: float = 2.0) -> list[str]:
        """Each service that cannot be reached now, as the message that names its setting: asked
        after a run fails, since a run whose broker or database went away fails with the client's
        bare error, or with none (the executor lost its steps). Bounded by `timeout_s` a service."""
        if not self.production:
            return []
        lost = []
        for check in (self._check_postgres, self._check_redis):
            try:
                check(timeout_s)
            except ProfileError as err:
                lost.append(str(err))
        return lost

    def _check_postgres(self, timeout_s: float) -> str:
        import psycopg2

        where = f"PostgreSQL at {self._pg.hostname}:{self._pg.port or 5432}"
        try:
            con = psycopg2.connect(self.postgres_url, connect_timeout=max(1, int(timeout_s)))
        except psycopg2.OperationalError as err:
            text = str(err).strip()
            if "password authentication failed" in text or "no password supplied" in text:
                problem = f"the password of user {self._pg.username!r} was refused"
            elif "does not exist" in text and "database" in text:
                problem = f"the database {self.database!r} does not exist (create it, or name another)"
            elif "role" in text and "does not exist" in text:
                problem = f"the user {self._pg.username!r} does not exist"
            else:
                problem = f"cannot be reached ({text.splitlines()[-1] if text else type(err).__name__})"
            raise ProfileError(f"{POSTGRES_URL_ENV}={_redact(self.postgres_url)}: {where}: {problem}") from None
        con.close()
        return f"{where}, database {self.database}"

    def _check_redis(self, timeout_s: float) -> str:
        import redis

        parts = urlsplit(self.redis_url)
        where = f"Redis at {parts.hostname}:{parts.port or 6379}"
        try:
            redis.Redis.from_url(self.redis_url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s).ping()
        except redis.AuthenticationError:
            raise ProfileError(f"{REDIS_URL_ENV}={_redact(self.redis_url)}: {where}: the password was refused") from None
        except redis.RedisError as err:
            raise ProfileError(f"{REDIS_URL_ENV}={_redact(self.redis_url)}: {where}: cannot be reached ({err})") from None
        return where


# The client errors that mean a service went away, by the top-level package that raises them and
# the error's class name, and the setting that names the service.
_LOST_SERVICE_ERRORS = (
    (("psycopg2", "psycopg", "sqlalchemy"), ("OperationalError", "InterfaceError"), POSTGRES_URL_ENV),
    (("redis", "kombu"), ("ConnectionError", "TimeoutError", "OperationalError"), REDIS_URL_ENV),
)


def _setting_for(package: str, name: str) -> str | None:
    return next((setting for packages, names, setting in _LOST_SERVICE_ERRORS
                 if package in packages and name in names), None)


def lost_service(err: BaseException) -> str | None:
    """The setting of the service an error says was lost mid-command (PostgreSQL or Redis going
    away), or None: looked for along the error's causes, by the client libraries' own error types."""
    seen = err
    while seen is not None:
        setting = _setting_for(type(seen).__module__.split(".")[0], type(seen).__name__)
        if setting:
            return setting
        seen = seen.__cause__ or seen.__context__
    return None


# A recorded error (a failed step's, read back from Dagster's event log after the run) names its
# class as `package.module.Type: message`.
_QUALIFIED_ERROR = re.compile(r"\b([a-z_][\w]*)(?:\.\w+)*\.(\w+(?:Error|Exception))\b")


def lost_service_in(text: str) -> str | None:
    """The setting of the service a recorded error says was lost (`redis.exceptions.ConnectionError:
    ...`), or None."""
    return next((setting for package, name in _QUALIFIED_ERROR.findall(text)
                 if (setting := _setting_for(package, name))), None)


def current() -> Profile:
    """The profile the environment names."""
    return Profile.from_env()
