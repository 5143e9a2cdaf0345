"""What the prediction log costs a request: `mlplatform serve` started in turn with and without
`--no-prediction-log`, alternating which goes first, on the same state directory; per server the
serving benchmark's `measure` (sequential requests on one kept-alive connection for p50 and p99,
then 4 connections for 10 s). Pairs taken close together in time cancel most of a shared machine's
drift, which three runs of each, minutes apart, do not.

    python benchmarks/prediction_log_cost.py --home <state dir with a champion and online features> [--pairs 6]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from common import BIN
from serving import FLIGHT, free_port, measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    serve = [str(BIN / "mlplatform"), "--home", str(args.home), "serve"]
    servers = {"logged": [], "unlogged": ["--no-prediction-log"]}
    runs: dict[str, list[dict]] = {name: [] for name in servers}
    for pair in range(args.pairs):
        for name in (list(servers) if pair % 2 == 0 else list(reversed(servers))):
            port = free_port()
            runs[name].append(measure(name, [*serve, "--port", str(port), *servers[name]],
                                      f"http://127.0.0.1:{port}", "/predict", FLIGHT, args.home,
                                      args.requests, 4, 10.0))
            print(json.dumps(runs[name][-1]), flush=True)
    medians = {name: {k: statistics.median(r[k] for r in rs) for k in ("p50_ms", "p99_ms", "throughput_rps")}
               for name, rs in runs.items()}
    cost = {k: round(medians["logged"][k] / medians["unlogged"][k] - 1, 3) for k in medians["logged"]}
    print(json.dumps({"medians": medians, "logged_over_unlogged": cost}, indent=1))


if __name__ == "__main__":
    main()
