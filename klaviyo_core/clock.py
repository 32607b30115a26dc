"""The run's clock: every wait of the tap (pacing, Retry-After, backoff) goes through one, so tests can fake it."""

from __future__ import annotations

import time
from datetime import datetime, timezone


class Clock:
    """Real time. A test passes a subclass whose `sleep` advances `monotonic` and `now` instead of waiting."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def now(self) -> datetime:
        return datetime.now(timezone.utc)
