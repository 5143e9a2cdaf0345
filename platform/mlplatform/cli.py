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


def cmd_dev(args: argparse.Namespace) -> int:
    from mlplatform.dev import run_dev

    return run_dev(_paths(args), args.host, args.port)


def cmd_replay(args: argparse.Namespace) -> int:
    from mlplatform.ingest.landing import LandingZone
    from mlplatform.ingest.replay import Replayer, ReplayError, parse_day, parse_shift
    from mlplatform.streaming.topic import open_topic

    paths = _paths(args).ensure()
    try:
        shift = parse_shift(args.shift) if args.shift else None
        replayer = Replayer(LandingZone(paths.landing, paths.quarantine), scale=args.scale,
                            topic=None if args.no_events or not _has_stream() else open_topic(paths), shift=shift)
        through = parse_day(args.through) if args.through else None
        result = replayer.replay(through=through, days=args.days, every=args.every,
                                 on_day=lambda d: print(f"landed {d}", flush=True) if args.every else None)
    except ReplayError as err:
        print(f"mlplatform replay: {err}", file=sys.stderr)
        return 2
    print(result.summary() + (f" (shift {shift}: files only, no events)" if shift and result.days else ""))
    return 0


def _has_stream() -> bool:
    """Whether the use case has a same-day stream for the replay to publish (its hooks' STREAM)."""
    from mlplatform.usecases import active

    return getattr(active().module, "STREAM", None) is not None


def cmd_status(args: argparse.Namespace) -> int:
    from mlplatform.status import collect_status, format_status

    status = collect_status(_paths(args))
    print(json.dumps(status, indent=2, default=str) if args.json else format_status(status))
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    from mlplatform.pipeline import LOG_LEVEL_ENV, run_pipeline, send_unraisable_to_log

    if args.log_level:
        os.environ[LOG_LEVEL_ENV] = args.log_level
    send_unraisable_to_log(_paths(args).ensure())
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


def serve_checks(args: argparse.Namespace) -> tuple[int, str | None]:
    """Whether `serve` may start: its token, an open address, the profile's servers. (exit code, token)"""
    from mlplatform.profile import current
    from mlplatform.serving.auth import TOKEN_ENV, TOKEN_FILE_ENV, TokenError, api_token, why_open_is_refused

    try:
        token = api_token()
    except TokenError as err:
        print(f"mlplatform serve: {err}", file=sys.stderr)
        return 2, None
    refused = None if token or args.uds else why_open_is_refused(args.host, current().production)
    if refused:
        print(f"mlplatform serve: {refused}: set {TOKEN_ENV}, or {TOKEN_FILE_ENV} to a file holding it "
              "(every endpoint but /health then needs `Authorization: Bearer <token>`)", file=sys.stderr)
        return 2, None
    lost = current().unreachable()  # production: the registry and the online store must answer first
    if lost:
        print(f"mlplatform serve: cannot start: {'; '.join(lost)}. Once it answers, run `mlplatform serve` "
              "again (a server lost while serving is survived: see docs/production.md)", file=sys.stderr)
        return 2, None
    return 0, token


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mlplatform.serving.app import create_app

    refused, token = serve_checks(args)
    if refused:
        return refused
    address = args.public_url or f"http://{args.host}:{args.port}"
    # Behind the router of several use cases (`--uds`): on its socket, under its namespace's path.
    where = {"uds": args.uds, "root_path": args.root_path} if args.uds else {"host": args.host, "port": args.port}
    log_level = "warning" if args.quiet else "info"  # each request in the access log; --quiet: warnings only
    if args.workers > 1:
        # Several processes on one socket (uvicorn's workers), each building the app from the
        # environment: its own models, feature cache and prediction log files (named by its pid).
        from mlplatform.serving.app import WORKER_SETTINGS_ENV

        os.environ[WORKER_SETTINGS_ENV] = json.dumps({"home": str(_paths(args).home),
                                                      "reload_seconds": args.reload_seconds,
                                                      "log_predictions": not args.no_prediction_log,
                                                      "banner": f"on {address} (docs: {address}/docs"
                                                                + (", bearer token required)" if token else ")")})
        uvicorn.run("mlplatform.serving.app:app_from_environment", factory=True, workers=args.workers,
                    log_level=log_level, access_log=not args.quiet, **where)
        return 0

    def ready(health: dict) -> None:
        print(f"mlplatform serve: {describe(health)} on {address} (docs: {address}/docs"
              + (", bearer token required)" if token else ")"), flush=True)

    from mlplatform.serving.app import describe

    app = create_app(_paths(args), reload_seconds=args.reload_seconds, log_predictions=not args.no_prediction_log,
                     on_ready=ready, api_token=token)
    uvicorn.run(app, log_level=log_level, access_log=not args.quiet, **where)
    return 0


def cmd_mlflow_ui(args: argparse.Namespace) -> int:
    """MLflow's own UI on the platform's tracking store and registry (either profile)."""
    import subprocess

    from mlplatform.model.tracking import store_exists, tracking_uri

    paths = _paths(args)
    if not store_exists(paths):
        print(f"mlplatform mlflow-ui: no tracking store under {paths.mlflow} yet: run `mlplatform prepare`",
              file=sys.stderr)
        return 2
    print(f"mlplatform mlflow-ui: the runs and the registry on http://{args.host}:{args.port} "
          f"(each trained_model materialization links its run: mlflow_run)", flush=True)
    return subprocess.call([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri(paths),
                            "--host", args.host, "--port", str(args.port)])


def cmd_worker(args: argparse.Namespace) -> int:
    """A Celery worker for the production profile's steps: dagster-celery's worker on this profile's
    broker, after checking that the database and the broker answer."""
    import subprocess

    from mlplatform.profile import DEFAULT_QUEUE, current

    profile = current()
    if not profile.production:
        print("mlplatform worker: steps run in their run's process on the embedded default; set "
              "MLPLATFORM_PROFILE=production (with MLPLATFORM_POSTGRES_URL and MLPLATFORM_REDIS_URL) "
              "to run them on workers", file=sys.stderr)
        return 2
    profile.check_services()
    _paths(args).activate()
    os.environ.setdefault("DAGSTER_HOME", str(_paths(args).dagster_home))
    name = args.name or f"mlplatform-{os.getpid()}"
    command = [sys.executable, "-m", "celery", "-A", "mlplatform.automation.celery_app", "worker",
               "--queues", ",".join(args.queue or [DEFAULT_QUEUE]), "--prefetch-multiplier", "1", "--concurrency", str(args.concurrency),
               "--hostname", f"{name}@%h", "--loglevel", args.loglevel]
    from mlplatform.usecases import enabled_names

    if len(enabled_names()) > 1:
        # A step's process builds one use case's definitions: with several enabled, each step gets a
        # fresh process, whichever use case it is of.
        command += ["--max-tasks-per-child", "1"]
    from mlplatform.automation.celery_app import app
    from mlplatform.automation.lost_workers import watching

    # The watch for the peers' lost steps (of runs however started) runs beside this worker.
    with watching(app, log=lambda line: print(f"mlplatform worker {name}: {line}", file=sys.stderr, flush=True)):
        return subprocess.call(command)


def cmd_consume(args: argparse.Namespace) -> int:
    """The same-day stream's consumer: events into same-day features in Feast's online store."""
    import signal
    import time

    from mlplatform.features.repo import applied_hash, open_store
    from mlplatform.streaming.consumer import KEPT_COPY, Consumer, describe
    from mlplatform.streaming.topic import open_topic
    from mlplatform.usecases import active

    if not _has_stream():
        print(f"mlplatform consume: the use case {active().name!r} has no same-day stream (its hooks, "
              f"{active().hooks}, define no STREAM): there is nothing to consume", file=sys.stderr)
        return 2
    paths = _paths(args).ensure()
    if args.follow:  # one following consumer per state directory: a second would push every event twice
        from mlplatform.locks import hold_alone

        held = hold_alone(paths.own / "consumer.lock", "mlplatform consume --follow", {})  # noqa: F841 (the lock)
    topic = open_topic(paths)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    waited = False
    while applied_hash(paths) is None:  # the push sources exist once the definitions are applied
        if not args.follow:
            print("mlplatform consume: the feature definitions are not applied yet (materialize "
                  "feature_definitions, or run `mlplatform pipeline`)", file=sys.stderr)
            return 2
        if not waited:
            print("waiting for the feature definitions to be applied (the first day's refresh does it) …", flush=True)
            waited = True
        time.sleep(5)
        if stopping:
            return 0
    consumer = Consumer(topic, open_store(paths), batch_size=args.batch_size, kept_copy=paths.stream / KEPT_COPY)
    print(f"consuming {topic.where} from position {consumer.checkpoint.position or 'the start'} "
          f"({consumer.lag()} event(s) waiting)", flush=True)
    try:
        if args.follow:
            consumer.follow(poll_interval_s=args.poll_seconds, stop=lambda: bool(stopping),
                            on_poll=lambda r: print(describe(r), flush=True))
        else:
            while (report := consumer.poll()).events:
                print(describe(report), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        topic.close()
    print(f"stopped at position {consumer.checkpoint.position or 'the start'}; "
          f"{consumer.checkpoint.consumed} event(s) consumed")
    return 0


def cmd_new_use_case(args: argparse.Namespace) -> int:
    """The files of a new use case, runnable as they are (docs/use_cases.md says how to adapt them)."""
    from mlplatform.usecases.scaffold import ScaffoldError, scaffold
    from mlplatform.state import project_root

    try:
        written = scaffold(args.name, task=args.task, horizon=args.horizon)
    except ScaffoldError as err:
        print(f"mlplatform new-use-case: {err}", file=sys.stderr)
        return 2
    root = project_root()
    for path in written:
        print(f"wrote {path.relative_to(root)}")
    print(f"\nNext: run it alone (MLPLATFORM_USE_CASES={args.name} mlplatform replay --days 90 && "
          f"MLPLATFORM_USE_CASES={args.name} mlplatform pipeline), then replace source.csv, the contract, the dbt "
          "models and the features with yours (docs/use_cases.md)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlplatform", description=__doc__)
    parser.add_argument("--home", default=None,
                        help=f"state directory (default: ${HOME_ENV}, else .mlplatform/ in the checkout)")
    parser.add_argument("--use-case", default=None, metavar="NAME",
                        help="the enabled use case to act on (default: each enabled one in turn for replay, pipeline "
                             "and status; serve answers for each, under /<namespace>/)")
    sub = parser.add_subparsers(dest="command", required=True)

    prepare = sub.add_parser("prepare", help="create the state directory and the Dagster instance config")
    prepare.set_defaults(func=cmd_prepare)

    replay = sub.add_parser("replay", help="land the next days of real data in the landing zone")
    when = replay.add_mutually_exclusive_group(required=True)
    when.add_argument("--through", metavar="YYYY-MM-DD", help="land every day up to and including this one")
    when.add_argument("--days", type=int, metavar="N", help="land the next N days after what is landed")
    replay.add_argument("--every", type=float, default=0.0, metavar="SECONDS",
                        help="run each day in this many seconds: its stream's events are published as they "
                             "happen on that clock, its files land at its end")
    replay.add_argument("--no-events", action="store_true",
                        help="land the files only, without publishing the same-day stream's events")
    replay.add_argument("--scale", type=int, default=1, metavar="K",
                        help="land K times the rows of each day: the real ones and K-1 synthetic copies "
                             "(the use case's feed makes them), for benchmarks")
    replay.add_argument("--shift", metavar="SHIFT",
                        help="land these days with their data changed as the use case's hooks define "
                             "(its `parse_shift`, e.g. delays-inverted:EWR; docs/use_cases.md), to see "
                             "monitoring react; the files only, no events")
    replay.set_defaults(func=cmd_replay)

    dev = sub.add_parser("dev", help="the platform in the Dagster UI (what `make run` starts): prepare, the stream's "
                                     "consumer and `dagster dev`, once per state directory")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(func=cmd_dev)

    consume = sub.add_parser("consume", help="the same-day stream's consumer: same-day features into "
                                             "the online store as events come")
    consume.add_argument("--follow", action="store_true", help="keep polling for new events (what `make run` starts)")
    consume.add_argument("--batch-size", type=int, default=5000, help="events read, pushed and committed at a time")
    consume.add_argument("--poll-seconds", type=float, default=0.2, help="how long to wait when the topic has nothing new")
    consume.set_defaults(func=cmd_consume)

    rollback = sub.add_parser("rollback", help="put the previous champion model back")
    rollback.add_argument("--reason", default="", help="why, for the deployment log")
    rollback.set_defaults(func=cmd_rollback)

    pipeline = sub.add_parser("pipeline", help="materialize everything the landed data allows, headless "
                                               "(what the sensors do, in one process)")
    pipeline.add_argument("--no-retrain", action="store_true", help="make and report the retrain decision, but do not train")
    pipeline.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper,
                          help="what of each run's log to print (default WARNING; every event is in the Dagster "
                               "instance either way)")
    pipeline.set_defaults(func=cmd_pipeline)
    serve = sub.add_parser("serve", help="the online prediction API")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--quiet", action="store_true", help="no access log: only warnings and errors")
    serve.add_argument("--no-prediction-log", action="store_true",
                       help="do not write answers to $MLPLATFORM_HOME/prediction_log (docs/operating.md: Tracing an answer)")
    serve.add_argument("--reload-seconds", type=float, default=2.0,
                       help="how often to check the registry for a new champion")
    serve.add_argument("--workers", type=int, default=1,
                       help="processes answering on the same port (default 1; about one per core under load)")
    # Set by `serve` for each use case's server behind its router (several use cases), not by hand.
    serve.add_argument("--uds", default=None, help=argparse.SUPPRESS)
    serve.add_argument("--root-path", default="", help=argparse.SUPPRESS)
    serve.add_argument("--public-url", default=None, help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    mlflow_ui = sub.add_parser("mlflow-ui", help="MLflow's UI on the platform's tracking store: runs, metrics, "
                                                 "the registry and its aliases")
    mlflow_ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    mlflow_ui.add_argument("--port", type=int, default=5000,
                           help="port (default 5000, where the Dagster metadata's run links point)")
    mlflow_ui.set_defaults(func=cmd_mlflow_ui)

    worker = sub.add_parser("worker", help="production profile: a Celery worker that executes runs' steps")
    worker.add_argument("--concurrency", type=int, default=1, help="steps this worker runs at once (processes)")
    worker.add_argument("--name", default=None, help="the worker's name (default: mlplatform-<pid>)")
    worker.add_argument("--queue", action="append", metavar="NAME",
                        help="a queue to take steps from (repeatable; default: dagster). A GPU worker takes "
                             "the training queue, MLPLATFORM_TRAINING_QUEUE")
    worker.add_argument("--loglevel", default="WARNING", help="Celery's log level")
    worker.set_defaults(func=cmd_worker)

    new = sub.add_parser("new-use-case", help="write the files of a new use case (spec, hooks, dbt models, Feast "
                                                "definitions, example data), runnable as they are")
    new.add_argument("name", help="the use case's name: lower-case letters, digits and _")
    new.add_argument("--task", choices=["regression", "binary"], default="regression",
                     help="predict the sum of an entity's values over the next days, or whether it has any event")
    new.add_argument("--horizon", type=int, default=30, help="days the outcome covers (and takes to be known)")
    new.set_defaults(func=cmd_new_use_case)

    status = sub.add_parser("status", help="what is landed, loaded, built, trained and deployed: the champions' "
                                           "lineage, the stream, the latest retrains and failed runs, runs stuck "
                                           "without a process (reads the state directory; starts nothing)")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=cmd_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import errno

    from mlplatform.each_use_case import EACH_USE_CASE, ONE_USE_CASE, choose_one, run_each, several_unbound
    from mlplatform.locks import InUse
    from mlplatform.profile import ProfileError
    from mlplatform.state import StateDirectoryError
    from mlplatform.usecases import UseCaseError

    args = build_parser().parse_args(argv)
    if args.home:
        os.environ[HOME_ENV] = args.home
    try:
        if args.use_case:
            from mlplatform.usecases import USE_CASE_ENV, enabled_names

            if args.use_case not in enabled_names():
                raise UseCaseError(f"--use-case {args.use_case}: not an enabled use case (enabled: "
                                   f"{', '.join(enabled_names())})")
            os.environ[USE_CASE_ENV] = args.use_case
        elif args.command in EACH_USE_CASE and several_unbound():
            return run_each(args, list(sys.argv[1:] if argv is None else argv))
        elif args.command in ONE_USE_CASE and several_unbound():
            choose_one(args.command)
        if args.command in WRITERS:
            _paths(args).check_writable()
        return args.func(args)
    except ProfileError as err:
        print(f"mlplatform {args.command}: {err}", file=sys.stderr)
        return 2
    except (StateDirectoryError, InUse, UseCaseError) as err:  # UseCaseError: a spec that breaks a rule
        print(f"mlplatform {args.command}: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            return _service_lost(args, err)
        print(f"mlplatform {args.command}: cannot write {err.filename or _paths(args).home}: {err.strerror}. "
              "Whatever was being written was left as it was (every write is atomic); free space or make the "
              "state directory writable, then run the command again", file=sys.stderr)
        return 2
    except Exception as err:  # re-raised unless it says a production server was lost
        return _service_lost(args, err)


def _service_lost(args: argparse.Namespace, err: BaseException) -> int:
    """A server of the production profile went away mid-command: say which, not a traceback. Every
    write is in a transaction or atomic, so a rerun once it is back redoes what is missing."""
    from mlplatform.profile import lost_service

    setting = lost_service(err)
    if setting is None:
        raise err
    detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    print(f"mlplatform {args.command}: lost the connection to the server of {setting} ({detail}). "
          "Nothing was half-written; run the command again once it is back", file=sys.stderr)
    return 2


# Commands that write to the state directory: checked for a writable, not full, directory first.
WRITERS = ("prepare", "replay", "pipeline", "rollback", "consume", "dev")


if __name__ == "__main__":
    sys.exit(main())
