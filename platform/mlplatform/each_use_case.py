"""Commands with several use cases enabled: a process serves one use case (`mlplatform.usecases`),
so a command runs once per use case, each in a process of its own, unless `--use-case` names one.

    replay, pipeline, status   each in turn (`== name ==`); `status --json` as one document
    serve                      a server each, behind one address (serving/router.py)
    rollback, consume          the only one they apply to, else `--use-case`
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys


def several_unbound() -> bool:
    from mlplatform.usecases import USE_CASE_ENV, enabled_names

    return len(enabled_names()) > 1 and not os.environ.get(USE_CASE_ENV)


def run_each(args: argparse.Namespace, argv: list[str]) -> int:
    """The command once per enabled use case, each in a process of its own: one after another, or for
    `serve` side by side behind one address."""
    from mlplatform.usecases import USE_CASE_ENV, enabled

    use_cases = enabled()
    if args.command == "replay" and args.through:  # only the use cases whose calendar holds the day
        from mlplatform.ingest.replay import ReplayError, parse_day

        try:
            day = parse_day(args.through)
        except ReplayError as err:
            print(f"mlplatform replay: {err}", file=sys.stderr)
            return 2
        use_cases = [u for u in use_cases if u.calendar.first_day <= day]
        if not use_cases:
            print(f"mlplatform replay: --through {args.through} is before every enabled use case's first day",
                  file=sys.stderr)
            return 2
    command = [sys.executable, "-m", "mlplatform.cli", *argv]
    if args.command == "serve":
        return serve_each(args, command, use_cases)
    if args.command == "status" and args.json:  # one document, by use case
        documents, worst = {}, 0
        for use_case in use_cases:
            done = subprocess.run(command, env={**os.environ, USE_CASE_ENV: use_case.name}, stdout=subprocess.PIPE,
                                  text=True)
            worst = max(worst, done.returncode)
            documents[use_case.name] = json.loads(done.stdout) if done.returncode == 0 else None
        print(json.dumps({"use_cases": documents}, indent=2))
        return worst
    worst = 0
    for use_case in use_cases:
        print(f"== {use_case.name} ==", flush=True)
        worst = max(worst, subprocess.call(command, env={**os.environ, USE_CASE_ENV: use_case.name}))
    return worst


def choose_one(command: str) -> None:
    """The one use case a command acts on, when several are enabled: the only one it applies to
    (`consume`: the only one with a stream), else the user must say (`--use-case`)."""
    from mlplatform.usecases import USE_CASE_ENV, UseCaseError, enabled

    candidates = [u.name for u in enabled() if command != "consume" or getattr(u.module, "STREAM", None) is not None]
    if len(candidates) != 1:
        raise UseCaseError(f"several use cases are enabled ({', '.join(u.name for u in enabled())}): say which "
                           f"one to {command} with --use-case NAME")
    os.environ[USE_CASE_ENV] = candidates[0]


# Commands that act on one use case; with several enabled, the only one they apply to or `--use-case`.
ONE_USE_CASE = ("rollback", "consume")
# Commands run once per enabled use case when several are and none is chosen (`--use-case`).
EACH_USE_CASE = ("replay", "pipeline", "status", "serve")


def _stopped_with_parent() -> None:
    """In a server's process before it starts: SIGTERM when the `serve` process dies, even by
    SIGKILL, so that no server is left on its socket behind a router that is gone (Linux's
    PR_SET_PDEATHSIG; elsewhere only a `serve` that stops itself stops them)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve_each(args: argparse.Namespace, command: list[str], use_cases: list) -> int:
    """`serve` with several use cases: a server each, on a Unix socket, behind one router on the
    address asked for (`/<namespace>/...`; the empty namespace keeps the root)."""
    import shutil
    import signal
    import tempfile
    import time
    from pathlib import Path

    import uvicorn

    from mlplatform.serving.router import create_router
    from mlplatform.usecases import USE_CASE_ENV

    from mlplatform.cli import serve_checks

    refused, _ = serve_checks(args)
    if refused:
        return refused
    address = f"http://{args.host}:{args.port}"
    folder = Path(tempfile.mkdtemp(prefix="mlplatform-serve-"))  # short: a socket's path has a length limit
    sockets, servers = {}, []
    try:
        for use_case in use_cases:
            namespace = use_case.state_folder
            sockets[namespace] = folder / f"{use_case.name}.sock"
            prefix = f"/{namespace}" if namespace else ""
            print(f"mlplatform serve: {use_case.name} under {address}{prefix or '/'}", flush=True)
            servers.append(subprocess.Popen([*command, "--uds", str(sockets[namespace]), "--root-path", prefix,
                                             "--public-url", address + prefix],
                                            env={**os.environ, USE_CASE_ENV: use_case.name},
                                            preexec_fn=_stopped_with_parent))
        while not all(socket.exists() for socket in sockets.values()):
            for server, use_case in zip(servers, use_cases):
                if server.poll() is not None:
                    print(f"mlplatform serve: {use_case.name}'s server exited ({server.returncode}) before it "
                          "answered: see its output above", file=sys.stderr)
                    return server.returncode or 1
            time.sleep(0.2)
        # uvicorn raises the signal it stopped on again once stopped: as an exit, so that the servers
        # behind the router are stopped and their sockets removed here.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvicorn.run(create_router(sockets), host=args.host, port=args.port,
                    log_level="warning" if args.quiet else "info", access_log=not args.quiet)
        return 0
    finally:
        for server in servers:
            if server.poll() is None:
                server.terminate()
        for server in servers:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(folder, ignore_errors=True)
