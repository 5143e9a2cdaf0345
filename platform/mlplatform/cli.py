"""`mlplatform`: the platform's command line (replay data, prepare state, report status)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from mlplatform.state import HOME_ENV, StatePaths


def _paths(args: argparse.Namespace) -> StatePaths:
    return StatePaths.resolve(args.home)


def cmd_prepare(args: argparse.Namespace) -> int:
    from mlplatform.prepare import prepare

    for line in prepare(_paths(args)):
        print(line)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from mlplatform.ingest.landing import LandingZone
    from mlplatform.ingest.replay import Replayer, ReplayError, parse_day

    paths = _paths(args).ensure()
    try:
        replayer = Replayer(LandingZone(paths.landing, paths.quarantine), scale=args.scale)
        through = parse_day(args.through) if args.through else None
        result = replayer.replay(through=through, days=args.days, every=args.every,
                                 on_day=lambda d: print(f"landed {d}", flush=True) if args.every else None)
    except ReplayError as err:
        print(f"mlplatform replay: {err}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from mlplatform.status import collect_status, format_status

    status = collect_status(_paths(args))
    print(json.dumps(status, indent=2, default=str) if args.json else format_status(status))
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    from mlplatform.pipeline import run_pipeline

    result = run_pipeline(_paths(args), retrain=not args.no_retrain)
    print(f"{len(result.runs)} run(s), {len(result.failed)} failed; champion: "
          f"{'version ' + str(result.champion_version) if result.champion_version else 'none'}")
    return 1 if result.failed else 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from mlplatform.model.deployment import DeploymentError, rollback

    paths = _paths(args)
    try:
        entry = rollback(paths, reason=args.reason)
    except DeploymentError as err:
        print(f"mlplatform rollback: {err}", file=sys.stderr)
        return 2
    _record_rollback(paths, entry)
    print(f"rolled back: champion is version {entry['version']} again "
          f"(version {entry['previous_version']} is now the previous champion)")
    return 0


def _record_rollback(paths: StatePaths, entry: dict) -> None:
    """The rollback as a `deployed_model` materialization, so the Dagster UI names the served version."""
    import dagster as dg

    from mlplatform.automation.deployments import record_in_dagster
    from mlplatform.prepare import prepare

    prepare(paths)
    with dg.DagsterInstance.from_config(str(paths.dagster_home)) as instance:
        record_in_dagster(instance, entry)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mlplatform.serving.app import create_app

    app = create_app(_paths(args), reload_seconds=args.reload_seconds)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlplatform", description=__doc__)
    parser.add_argument("--home", default=None,
                        help=f"state directory (default: ${HOME_ENV}, else .mlplatform/ in the checkout)")
    sub = parser.add_subparsers(dest="command", required=True)

    prepare = sub.add_parser("prepare", help="create the state directory and the Dagster instance config")
    prepare.set_defaults(func=cmd_prepare)

    replay = sub.add_parser("replay", help="land the next days of real data in the landing zone")
    when = replay.add_mutually_exclusive_group(required=True)
    when.add_argument("--through", metavar="YYYY-MM-DD", help="land every day up to and including this one")
    when.add_argument("--days", type=int, metavar="N", help="land the next N days after what is landed")
    replay.add_argument("--every", type=float, default=0.0, metavar="SECONDS",
                        help="wait this long between days, to watch the platform take them in")
    replay.add_argument("--scale", type=int, default=1, metavar="K",
                        help="land K times the flights: the real ones and K-1 synthetic copies "
                             "(resampled, moved a few minutes, new flight numbers and planes), for benchmarks")
    replay.set_defaults(func=cmd_replay)

    rollback = sub.add_parser("rollback", help="put the previous champion model back")
    rollback.add_argument("--reason", default="", help="why, for the deployment log")
    rollback.set_defaults(func=cmd_rollback)

    pipeline = sub.add_parser("pipeline", help="materialize everything the landed data allows, headless "
                                               "(what the sensors do, in one process)")
    pipeline.add_argument("--no-retrain", action="store_true", help="make and report the retrain decision, but do not train")
    pipeline.set_defaults(func=cmd_pipeline)
    serve = sub.add_parser("serve", help="the online prediction API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--reload-seconds", type=float, default=2.0,
                       help="how often to check the registry for a new champion")
    serve.set_defaults(func=cmd_serve)

    status = sub.add_parser("status", help="what is landed, quarantined and loaded")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=cmd_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import errno

    from mlplatform.state import StateDirectoryError

    args = build_parser().parse_args(argv)
    if args.home:
        os.environ[HOME_ENV] = args.home
    try:
        if args.command in WRITERS:
            _paths(args).check_writable()
        return args.func(args)
    except StateDirectoryError as err:
        print(f"mlplatform {args.command}: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise
        print(f"mlplatform {args.command}: cannot write {err.filename or _paths(args).home}: {err.strerror}. "
              "Whatever was being written was left as it was (every write is atomic); free space or make the "
              "state directory writable, then run the command again", file=sys.stderr)
        return 2


# Commands that write to the state directory: checked for a writable, not full, directory first.
WRITERS = ("prepare", "replay", "pipeline", "rollback")


if __name__ == "__main__":
    sys.exit(main())
