"""Benchmarks 1 and 3: cold end to end, against a bare script, and as the data grows.

Cold end to end: an empty MLPLATFORM_HOME, the year landed (`mlplatform replay`), then `mlplatform
pipeline` to a deployed champion: wall time and the peak memory of its process tree. Beside it, on
the same landed files, `bare_pipeline.py`: the same per-flight features in plain DuckDB SQL and the
same preprocessing and network in plain PyTorch (no orchestration, lake, dbt, Feast, MLflow, gate).

Scale: the same cold run on `mlplatform replay --scale K` (K times the flights, synthetic copies).

    python benchmarks/run.py cold_end_to_end scale
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

from common import BIN, TINY_SPEC, Context, figure, measured, mlplatform, platform_env

BARE = Path(__file__).resolve().parent / "bare_pipeline.py"
TARGET_RATIO, TARGET_PEAK_GIB = 5.0, 2.5  # issue 32: a cold year within 5x the bare script, 2.5 GiB


def cold_run(ctx: Context, scale: int = 1, bare: bool = True) -> dict:
    """One cold run at `scale`: the pipeline from an empty home; the bare script on the same files.
    A smoke run lands all but the last day and keeps its home as the context's history home."""
    settings = TINY_SPEC if ctx.smoke else {}
    through = ctx.last_day
    if ctx.smoke:
        through = (date.fromisoformat(ctx.last_day) - timedelta(days=1)).isoformat()
    home = Path(tempfile.mkdtemp(dir=ctx.work)) / "home"
    replay = mlplatform("replay", "--through", through, "--scale", str(scale), home=home)
    pipeline = mlplatform("pipeline", home=home, settings=settings)
    if "champion: version" not in pipeline["output"]:
        raise RuntimeError(f"the cold pipeline deployed no champion:\n{pipeline['output'][-2000:]}")
    run = {"scale": scale, "through": through, "replay_s": replay["seconds"], "pipeline_s": pipeline["seconds"],
           "pipeline_peak_gib": pipeline["peak_gib"],
           "runs": [line for line in pipeline["output"].splitlines() if " ok in " in line or "FAILED" in line],
           "champions": champions(home, settings)}
    if bare:
        command = [sys.executable, str(BARE), "--landing", str(home / "landing"), "--work", str(home.parent / "bare")]
        if ctx.smoke:
            command += ["--holdout-days", "2", "--validation-days", "2", "--max-epochs", "2"]
        result = measured(command, platform_env(home, settings))
        run |= {"bare_s": result["seconds"], "bare_peak_gib": result["peak_gib"], "bare": result["output"][-600:]}
        run["ratio"] = round(run["pipeline_s"] / run["bare_s"], 2)
    if ctx.smoke and scale == 1:
        ctx.homes.setdefault(through, home)
    else:
        shutil.rmtree(home.parent, ignore_errors=True)
    return run


def champions(home: Path, settings: dict[str, str]) -> dict[str, dict]:
    """What the cold run bought: per model line, the champion's family and its holdout figure, as the
    registry holds them (`mlplatform status --json`)."""
    import json

    done = subprocess.run([str(BIN / "mlplatform"), "status", "--json"], env=platform_env(home, settings),
                          capture_output=True, text=True, check=True)
    status, found = json.loads(done.stdout), {}
    for line in ("models", "live_model"):
        held = (status.get(line) or {}).get("aliases", {}).get("champion")
        if held:
            metric = next(k for k in held if k.startswith("holdout_") and k != "holdout")
            found[line] = {"version": held["version"], "family": held["model_family"], metric: held[metric]}
    return found


def bench_cold(ctx: Context) -> dict:
    runs = [cold_run(ctx) for _ in range(ctx.repeats)]
    ctx.cold_runs += runs
    ratios = [r["ratio"] for r in runs]
    return {"title": "Cold end to end, against a bare script",
            "figures": [
                figure("`mlplatform pipeline`, empty home to champion", [r["pipeline_s"] for r in runs], "s"),
                figure("its peak memory (process tree)", [r["pipeline_peak_gib"] for r in runs], "GiB",
                       target=f"<= {TARGET_PEAK_GIB}", met=max(r["pipeline_peak_gib"] for r in runs) <= TARGET_PEAK_GIB),
                figure("`bare_pipeline.py` on the same files", [r["bare_s"] for r in runs], "s"),
                figure("its peak memory", [r["bare_peak_gib"] for r in runs], "GiB"),
                figure("ratio platform / bare", ratios, "x", target=f"<= {TARGET_RATIO}",
                       met=max(ratios) <= TARGET_RATIO),
                *_champion_figures(runs),
            ],
            "runs": runs}


def _champion_figures(runs: list[dict]) -> list[dict]:
    """The champions' holdout figures of the runs, per model line (the model quality the time bought)."""
    names = {"models": "day-ahead", "live_model": "live"}
    figures = []
    for line, name in names.items():
        held = [r["champions"][line] for r in runs if line in r.get("champions", {})]
        metric = next((k for k in held[0] if k.startswith("holdout_")), None) if held else None
        values = [h[metric] for h in held if h.get(metric) is not None]
        if values:
            figures.append(figure(f"{name} champion's {metric.replace('_', ' ')} ({held[0]['family']})",
                                  values, "", digits=4))
    return figures


def bench_scale(ctx: Context) -> dict:
    scales = [1] if ctx.smoke else ctx.scales
    runs = [_median_run(ctx.cold_runs) if scale == 1 and ctx.cold_runs else cold_run(ctx, scale, bare=False)
            for scale in scales]
    base = runs[0]["pipeline_s"]
    figures = []
    for run in runs:
        k = run["scale"]
        figures.append(figure(f"K = {k}: pipeline", [run["pipeline_s"]], "s",
                              target=f"<= {k} x K=1" if k > 1 else "", met=run["pipeline_s"] <= k * base if k > 1 else None))
        figures.append(figure(f"K = {k}: peak memory", [run["pipeline_peak_gib"]], "GiB",
                              target="< 4" if k == scales[-1] else "",
                              met=run["pipeline_peak_gib"] < 4 if k == scales[-1] else None))
    return {"title": "Scale: cold end to end on K times the flights", "figures": figures, "runs": runs}


def _median_run(runs: list[dict]) -> dict:
    """The cold run (K = 1) with the median pipeline time."""
    return sorted(runs, key=lambda r: r["pipeline_s"])[(len(runs) - 1) // 2]


BENCHMARKS = {"cold_end_to_end": bench_cold, "scale": bench_scale}
