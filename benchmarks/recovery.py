"""Benchmark: recovery after a crash. For each stage, a new day lands, `mlplatform pipeline` is
killed with `kill -9` (its whole process group) at that stage, and a plain rerun is timed until it
has completed the work: the dead run failed and its slots freed, the day refreshed, the retrain
trained, gated and deployed, and every reader agreeing on one champion.

    python benchmarks/run.py recovery

Stages (the platform's crash points, `mlplatform/faults.py`): dbt building the day, the online
store half written, training (the MLflow run RUNNING), the champion alias moved but not yet logged.
Each stage starts from a copy of a history home (January 1-30 built and a champion; a few days when
smoke) and lands January 31, with a policy that retrains on the new day, so every rerun goes through
the whole model stage too. The figure is the rerun's time; beside it, what the same run takes with no crash.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

from common import BIN, Context, figure, mlplatform, platform_env

STAGES = ("dbt_build", "online_write", "training", "after_champion_alias")
# Retrain on the new day, at once, and deploy whatever passes: each rerun exercises the model stage.
RETRAIN_NOW = {"MLPLATFORM_RETRAIN_MIN_NEW_LABELED_ROWS": "100", "MLPLATFORM_RETRAIN_COOLDOWN_MINUTES": "0",
               "MLPLATFORM_MODEL_GATE_TOLERANCE": "1"}


# A month of history, as the one-new-day benchmark's first case (a retrain on it takes a minute).
NEW_DAY = "2013-01-31"


def _fresh_copy(ctx: Context, name: str) -> tuple[Path, str]:
    day = ctx.last_day if ctx.smoke else NEW_DAY
    history = ctx.history_home((date.fromisoformat(day) - timedelta(days=1)).isoformat())
    home = ctx.work / f"recovery-{name}"
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(history, home, symlinks=True)
    mlplatform("replay", "--through", day, home=home)
    return home, day


def _check(run: dict, crashed: bool) -> None:
    output = run["output"]
    if crashed and "recovered:" not in output:
        raise RuntimeError(f"the rerun recovered nothing:\n{output[-2000:]}")
    if "champion: version" not in output or " failed;" in output and ", 0 failed;" not in output:
        raise RuntimeError(f"the rerun did not complete the work:\n{output[-2000:]}")


def bench(ctx: Context) -> dict:
    from mlplatform.faults import kill_at_point

    settings = {**ctx.spec, **RETRAIN_NOW}
    figures = []
    # A smoke run keeps the benchmark working with its hardest stage only (the rerun reconciles the log).
    for stage in STAGES[-1:] if ctx.smoke else STAGES:
        seconds, killed_after = [], []
        for _ in range(ctx.repeats):
            home, _ = _fresh_copy(ctx, stage)
            killed_after.append(kill_at_point([str(BIN / "mlplatform"), "pipeline"], platform_env(home, settings),
                                              home, stage, log=ctx.work / f"recovery-{stage}.log"))
            rerun = mlplatform("pipeline", home=home, settings=settings)
            _check(rerun, crashed=True)
            seconds.append(rerun["seconds"])
            shutil.rmtree(home, ignore_errors=True)
        figures.append(figure(f"killed at `{stage}` (after {min(killed_after):.0f}–{max(killed_after):.0f} s): "
                              "the rerun to a consistent champion", seconds, "s"))
    baseline = []
    for _ in range(0 if ctx.smoke else ctx.repeats):
        home, _ = _fresh_copy(ctx, "baseline")
        run = mlplatform("pipeline", home=home, settings=settings)
        _check(run, crashed=False)
        baseline.append(run["seconds"])
        shutil.rmtree(home, ignore_errors=True)
    if baseline:
        figures.append(figure("no crash: the same new day's pipeline", baseline, "s"))
    return {"title": "Recovery after kill -9", "figures": figures}


BENCHMARKS = {"recovery": bench}
