"""Klaviyo's fixed-window rate limits: 1-second burst, 60-second steady and (reports) UTC-day windows.

Counted per quota (all private keys of the account share one; each OAuth client has its own) and per
operation (method + path template, or a documented per-parameter override such as
``additional-fields[profile]=predictive_analytics``). Rejected requests do not count.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .spec import RateLimit


@dataclass(frozen=True)
class Decision:
    """Outcome of one check: allowed or not, what to put in the headers, which window blocked."""

    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int = 0
    window: str | None = None


def scaled(value: int, scale: float) -> int:
    """A limit multiplied by ``scale`` (never below 1 request per window while enabled)."""
    return max(1, int(value * scale))


class RateLimiter:
    """Thread-safe window counters. ``clock`` returns wall-clock seconds (windows align to it)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, int], int] = {}
        self._last_prune = 0.0

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def now(self) -> float:
        """The windows' clock (a request's arrival is read on it)."""
        return self._clock()

    def check(
        self, bucket: str, limit: RateLimit, scale: float, daily: bool = True, arrived: float | None = None
    ) -> Decision:
        """Count one request against ``bucket`` if every window has room; else say how long to wait.
        `arrived`: when the request reached Klaviyo (it counts then, not when its answer is computed)."""
        now = self._clock() if arrived is None else arrived
        enabled = scale > 0
        windows: list[tuple[str, int, int, float]] = []  # (name, limit, window id, seconds until reset)
        if limit.burst:
            windows.append(("burst", _lim(limit.burst, scale, enabled), int(now), math.floor(now) + 1 - now))
        steady_id = int(now // 60)
        steady_limit = _lim(limit.steady, scale, enabled) if limit.steady else 0
        steady_reset = (steady_id + 1) * 60 - now
        if limit.steady:
            windows.append(("steady", steady_limit, steady_id, steady_reset))
        if limit.daily and daily:
            day_id = int(now // 86400)
            windows.append(("daily", _lim(limit.daily, scale, enabled), day_id, (day_id + 1) * 86400 - now))
        with self._lock:
            self._prune(now)
            if enabled:
                for name, cap, wid, until in windows:
                    if self._counts.get((bucket, name, wid), 0) >= cap:
                        wait = max(1, math.ceil(until))
                        return Decision(False, steady_limit, 0, max(1, math.ceil(steady_reset)), wait, name)
            for name, _cap, wid, _until in windows:
                self._counts[(bucket, name, wid)] = self._counts.get((bucket, name, wid), 0) + 1
            used = self._counts.get((bucket, "steady", steady_id), 0)
        shown = steady_limit or (windows[0][1] if windows else 0)
        return Decision(True, shown, max(0, shown - used), max(1, math.ceil(steady_reset)))

    def _prune(self, now: float) -> None:
        if now - self._last_prune < 5:
            return
        self._last_prune = now
        second, minute, day = int(now), int(now // 60), int(now // 86400)
        current = {"burst": second, "steady": minute, "daily": day}
        for key in [k for k in self._counts if k[2] < current[k[1]] - 1]:
            del self._counts[key]


def _lim(value: int, scale: float, enabled: bool) -> int:
    return scaled(value, scale) if enabled else value
