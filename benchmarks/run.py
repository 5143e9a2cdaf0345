"""`make bench`: run the benchmarks, write a JSON result for each, refresh docs/benchmarks.md's table.

    python benchmarks/run.py [NAME ...] [--repeats N] [--smoke] [--results DIR] [--docs FILE]

Names: cold_end_to_end, one_new_day, scale, serving, training, threads, startup, recovery, production, tour
(default: all, in that order). Each figure is the median of `--repeats` runs with its range; the scale benchmark runs once
per K. `--smoke` runs everything at a tiny size (a few days of data, one repeat), to keep the
benchmarks working; `make test` does that. Benchmarks are not tests: nothing here asserts a target,
the table says which are met.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cold_end_to_end  # noqa: E402
import one_new_day  # noqa: E402
import production  # noqa: E402
import recovery  # noqa: E402
import serving  # noqa: E402
import startup  # noqa: E402
import threads  # noqa: E402
import tour  # noqa: E402
import training_throughput  # noqa: E402
from common import ROOT, Context, machine  # noqa: E402

BENCHMARKS = {**cold_end_to_end.BENCHMARKS, **one_new_day.BENCHMARKS, **serving.BENCHMARKS,
              **training_throughput.BENCHMARKS, **threads.BENCHMARKS, **startup.BENCHMARKS, **recovery.BENCHMARKS,
              **production.BENCHMARKS, **tour.BENCHMARKS}
ORDER = ["cold_end_to_end", "one_new_day", "scale", "serving", "training", "threads", "startup", "recovery", "production",
         "tour"]
BEGIN, END = "<!-- make bench: begin -->", "<!-- make bench: end -->"


def render(results: list[dict]) -> str:
    """The summary table of every benchmark's figures (the docs' section between the markers)."""
    lines = [BEGIN, "", "| benchmark | figure | median | min–max | runs | target | met |", "|---|---|---|---|---|---|---|"]
    for result in results:
        for f in result["figures"]:
            unit = f" {f['unit']}" if f["unit"] != "x" else "×"
            spread = f"{_n(f['min'])}–{_n(f['max'])}" if f["runs"] > 1 else "(one run)"
            met = {True: "yes", False: "**no**", None: ""}[f["met"]]
            lines.append(f"| {result['title']} | {f['figure']} | {_n(f['median'])}{unit} | {spread} | "
                         f"{f['runs']} | {f['target']} | {met} |")
    stamps = sorted({(r["date"], r["machine"]) for r in results})
    lines += ["", "Measured " + "; ".join(f"{d} on {m}" for d, m in stamps) + " (`make bench`; the JSON of each "
              "benchmark is in `benchmarks/results/`).", "", END]
    return "\n".join(lines)


def _n(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:g}"


def update_docs(docs: Path, results_dir: Path) -> None:
    """Replace the table between the markers with one built from every stored result."""
    results = [json.loads((results_dir / f"{name}.json").read_text()) for name in ORDER
               if (results_dir / f"{name}.json").exists()]
    text = docs.read_text() if docs.exists() else "# Benchmarks\n\n"
    table = render(results)
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: table, text, flags=re.S)
    else:
        head, _, rest = text.partition("\n\n")
        text = f"{head}\n\n{table}\n\n{rest}"
    docs.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"some of: {', '.join(ORDER)}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 30], metavar="K",
                        help="the scale benchmark's data multiples (K = 1 is taken from the cold runs)")
    parser.add_argument("--smoke", action="store_true", help="a tiny size, one repeat: to keep them working")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(ORDER)
    if unknown:
        parser.error(f"no benchmark named {', '.join(sorted(unknown))} (there are: {', '.join(ORDER)})")
    names = [n for n in ORDER if n in args.names] or ORDER
    args.results.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mlplatform-bench-"))
    ctx = Context(smoke=args.smoke, work=work, repeats=1 if args.smoke else args.repeats, scales=args.scales)
    try:
        for name in names:
            started = time.perf_counter()
            print(f"== {name}", flush=True)
            result = {"benchmark": name, "date": date.today().isoformat(), "machine": machine(),
                      "smoke": args.smoke, **BENCHMARKS[name](ctx)}
            result["wall_s"] = round(time.perf_counter() - started, 1)
            (args.results / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))
            for f in result["figures"]:
                print(f"   {f['figure']}: {f['median']} {f['unit']} ({f['min']}–{f['max']}) {f['target']}", flush=True)
            update_docs(args.docs, args.results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
