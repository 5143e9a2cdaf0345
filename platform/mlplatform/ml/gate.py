"""The deployment gate, as a policy on holdout figures: pure, beside the evaluation that computes them.

A challenger passes when, on the same holdout rows:
- it beats the best baseline on the use case's metric (a tie does not), the baselines being fitted
  on the rows the challenger learned from;
- binary: its log loss beats predicting the base rate (a model worse than that is no probability to
  act on; the base rate has no ranking, so it is no rival on ROC AUC). Regression: the training
  mean is a rival like the others;
- it reaches the floor (`min_metric`), when the use case sets one;
- with a champion, it is at most `tolerance` worse than the champion on the metric, so retraining
  on fresh days is not blocked by noise.
The reason names every condition that failed, or all of them when it passes.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlplatform.ml.task import BINARY, HIGHER_IS_BETTER, better

BASE_RATE = "base_rate"


@dataclass(frozen=True)
class GateSettings:
    metric: str = "roc_auc"
    floor: float | None = None
    tolerance: float = 0.005
    against_baselines: bool = True  # off: the baseline conditions are reported, not required
    floor_name: str = "min_metric"  # the setting the floor comes from, as the reason names it


def _name(metric: str) -> str:
    return {"roc_auc": "ROC AUC", "pr_auc": "PR AUC", "log_loss": "log loss", "rmse": "RMSE", "mae": "MAE",
            "r2": "R2"}.get(metric, metric)


def gate(task: str, challenger: dict[str, float], baselines: dict[str, dict[str, float]],
         champion: dict[str, float] | None, settings: GateSettings) -> tuple[bool, str]:
    """(passed, reason) for the challenger's holdout figures against the baselines' and the champion's."""
    metric, label = settings.metric, _name(settings.metric)
    value = challenger[metric]
    higher = HIGHER_IS_BETTER[metric]
    rivals = {n: m for n, m in baselines.items() if not (task == BINARY and n == BASE_RATE)}
    conditions: list[tuple[bool, str]] = []

    def against_baselines(ok: bool, text: str) -> None:
        conditions.append((ok, text) if settings.against_baselines else (True, f"{text} (not required)"))

    if rivals:
        best = max(rivals, key=lambda n: rivals[n][metric] if higher else -rivals[n][metric])
        beaten = better(metric, value, rivals[best][metric])
        sign = (">" if beaten else "<=") if higher else ("<" if beaten else ">=")
        against_baselines(beaten, f"{label} {value:.4f} {sign} the best baseline's ({best}) {rivals[best][metric]:.4f}")
    if task == BINARY and BASE_RATE in baselines:
        base = baselines[BASE_RATE]["log_loss"]
        ok = challenger["log_loss"] < base
        against_baselines(ok, f"log loss {challenger['log_loss']:.4f} {'<' if ok else '>='} the base rate's {base:.4f}")
    if settings.floor is not None:
        met = value >= settings.floor if higher else value <= settings.floor
        conditions.append((met, f"{label} {value:.4f} {('>=' if met else '<') if higher else ('<=' if met else '>')} "
                                f"{settings.floor_name} {settings.floor}"))
    if champion is None:
        conditions.append((True, "no champion yet"))
    else:
        held = champion[metric]
        limit = held - settings.tolerance if higher else held + settings.tolerance
        kept = value >= limit if higher else value <= limit
        conditions.append((kept, f"{label} {value:.4f} {('>=' if kept else '<') if higher else ('<=' if kept else '>')} "
                                 f"champion {held:.4f} {'-' if higher else '+'} tolerance {settings.tolerance} = {limit:.4f}"))
    passed = all(ok for ok, _ in conditions)
    shown = [text for ok, text in conditions if passed or not ok]
    return passed, ("passed: " if passed else "failed: ") + "; ".join(shown)
