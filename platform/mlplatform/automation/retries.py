"""Failed work is tried again, a bounded number of times, further apart each time.

The landing and downstream sensors keep, per file or day, the attempts made on the same data and
when the last one started. A run that failed (a full disk, a killed process, a lock held too long)
is requested again after `backoff_seconds`, doubled after each failure, at most `max_attempts`
times; new data (a re-delivered file, a re-stored day) starts the count again. `mlplatform
pipeline` tries each piece of work once per invocation: a rerun is the retry.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    backoff_seconds: float = 30.0

    def wait_seconds(self, attempts: int, last_at: float, now: float) -> float | None:
        """Seconds to wait before the next attempt (0: now), or None when no attempt is left."""
        if attempts >= self.max_attempts:
            return None
        if attempts == 0:
            return 0.0
        return max(0.0, last_at + self.backoff_seconds * 2 ** (attempts - 1) - now)


@dataclass(frozen=True)
class Attempt:
    """Attempts on one version of a piece of work (`version`: a storage id or a modification time)."""

    version: int
    attempts: int = 0
    at: float = 0.0

    @classmethod
    def parse(cls, value) -> "Attempt | None":
        if value is None:
            return None
        if isinstance(value, int):  # a cursor written before retries: one attempt, long ago
            return cls(value, 1, 0.0)
        return cls(int(value[0]), int(value[1]), float(value[2]))

    def dump(self) -> list:
        return [self.version, self.attempts, self.at]

    def next(self, version: int, now: float) -> "Attempt":
        return Attempt(version, (self.attempts if self.version == version else 0) + 1, now)


HEADLESS = RetryPolicy(max_attempts=1, backoff_seconds=0.0)
