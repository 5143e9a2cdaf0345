"""Time-based splits: validation later than training, the holdout later than both, never shuffled."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlplatform.features.service import REQUEST_TIMESTAMP


def sample_positions(rows: int, max_rows: int | None, seed: int) -> np.ndarray | None:
    """The sorted positions of a seeded uniform sample of `max_rows` out of `rows`, or None when
    they all fit: what keeps a step's cost flat as the data grows (the same rows for the same seed)."""
    if max_rows is None or rows <= max_rows:
        return None
    return np.sort(np.random.default_rng(seed).choice(rows, size=max_rows, replace=False))


# Early stopping watches the validation days. A fortnight is what a few weeks of history can spare;
# with half a year before the holdout, a month stops both model families more steadily: one late
# fortnight can choose too few trees and epochs (docs/benchmarks.md, "Model families").
SHORT_VALIDATION_DAYS, LONG_VALIDATION_DAYS = 14, 28
LONG_HISTORY_DAYS = 182


def validation_days_for(days_before_holdout: int) -> int:
    """The validation days when the model spec leaves them unset."""
    return LONG_VALIDATION_DAYS if days_before_holdout >= LONG_HISTORY_DAYS else SHORT_VALIDATION_DAYS


class NotEnoughData(ValueError):
    """The window cannot train or evaluate a model (too few rows, or a single class)."""


@dataclass(frozen=True)
class TimeSplit:
    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame
    holdout_first_day: str

    def fitting_rows(self, with_validation: bool) -> pd.DataFrame:
        """The rows a model learns from: the training days, or (a refit) every day before the holdout."""
        return pd.concat([self.train, self.validation]) if with_validation else self.train

    def describe(self) -> dict:
        def span(frame: pd.DataFrame) -> str:
            days = local_day(frame)
            return f"{days.min()} .. {days.max()}" if len(frame) else "empty"
        return {"train": span(self.train), "validation": span(self.validation), "holdout": span(self.holdout),
                "train_rows": len(self.train), "validation_rows": len(self.validation),
                "holdout_rows": len(self.holdout)}


def local_day(frame: pd.DataFrame) -> pd.Series:
    from mlplatform.usecases import active

    TIMEZONE = active().calendar.timezone

    return pd.to_datetime(frame[REQUEST_TIMESTAMP], utc=True).dt.tz_convert(TIMEZONE).dt.strftime("%Y-%m-%d")


def split_by_time(frame: pd.DataFrame, *, holdout_days: int = 14, validation_days: int | None = 14,
                  holdout_first_day: str | None = None, label_delay_days: int = 0) -> TimeSplit:
    """The holdout is the most recent days (from `holdout_first_day`, or the last `holdout_days`);
    validation is the `validation_days` before it (None: `validation_days_for` the days before the
    holdout); training is everything earlier. With outcomes known `label_delay_days` late, the days
    within that many of the holdout are left out: a model learns only from outcomes known before
    its holdout starts."""
    days = local_day(frame)
    ordered = sorted(days.unique())
    if holdout_first_day is None:
        least = validation_days or SHORT_VALIDATION_DAYS
        if len(ordered) <= holdout_days + least:
            raise NotEnoughData(f"{len(ordered)} days of rows cannot hold {holdout_days} holdout and "
                                f"{least} validation days plus days to train on")
        holdout_first_day = ordered[-holdout_days]
    before = [d for d in ordered if d < holdout_first_day]
    if label_delay_days:
        from datetime import date, timedelta

        known_by = (date.fromisoformat(holdout_first_day) - timedelta(days=label_delay_days)).isoformat()
        before = [d for d in before if d < known_by]
    validation_days = validation_days or validation_days_for(len(before))
    if len(before) <= validation_days:
        raise NotEnoughData(f"only {len(before)} days before the holdout ({holdout_first_day}); need more "
                            f"than the {validation_days} validation days")
    validation_first_day = before[-validation_days]
    validation_end = before[-1]
    return TimeSplit(train=frame[days < validation_first_day],
                     validation=frame[(days >= validation_first_day) & (days <= validation_end)],
                     holdout=frame[days >= holdout_first_day], holdout_first_day=holdout_first_day)


def require_trainable(frame: pd.DataFrame, label: str, what: str, min_rows: int, task: str = "binary") -> None:
    if len(frame) < min_rows:
        raise NotEnoughData(f"the {what} has {len(frame)} rows; at least {min_rows} are needed")
    if task == "regression":
        values = pd.to_numeric(frame[label], errors="coerce")
        if values.isna().any():
            raise NotEnoughData(f"the {what} has {int(values.isna().sum())} rows without a numeric {label}")
        if values.nunique() < 2:
            raise NotEnoughData(f"the {what} holds a single value of {label} ({values.iloc[0]}): there is "
                                "nothing to learn or to score")
        return
    classes = frame[label].astype(bool).nunique()
    if classes < 2:
        only = bool(frame[label].iloc[0])
        raise NotEnoughData(f"the {what} holds a single class (every row {'positive' if only else 'negative'}): "
                            "a classifier cannot be fitted or scored")
