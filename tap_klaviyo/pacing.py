"""Per-endpoint request pacing shared by every stream and thread of a run.

Klaviyo limits each endpoint per account with a 1-second burst window, a 1-minute steady window and, for
reports, a daily cap. Pacing below those limits costs less than recovering from 429s.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from tap_klaviyo.errors import RateLimitExhausted

# The server counts a request when it arrives, and latency varies: a slightly longer client-side window
# keeps jittered arrivals inside Klaviyo's fixed windows.
BURST_WINDOW_S = 1.15
STEADY_WINDOW_S = 61.0


class DailyLimitReached(RateLimitExhausted):
    """The endpoint's daily budget is spent; waiting would mean sleeping until UTC midnight."""

    def __init__(self, endpoint: str, resets_at: datetime) -> None:
        self.endpoint = endpoint
        self.resets_at = resets_at
        super().__init__(
            f"Klaviyo's daily limit for {endpoint} is used up; it resets at {resets_at:%Y-%m-%d %H:%M} UTC"
        )


@dataclass
class Limiter:
    """Sliding-window limiter for one endpoint: at most `burst` per second and `steady` per minute."""

    name: str
    burst: int
    steady: int
    daily: int | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _recent: deque[float] = field(default_factory=deque)
    _held_until: float = 0.0
    _day: str = ""
    _day_count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    waited_s: float = 0.0

    def _wait_needed(self, now: float) -> float:
        recent = self._recent
        while recent and recent[0] <= now - STEADY_WINDOW_S:
            recent.popleft()
        wait = self._held_until - now
        if len(recent) >= self.steady:
            wait = max(wait, recent[len(recent) - self.steady] + STEADY_WINDOW_S - now)
        if len(recent) >= self.burst:
            wait = max(wait, recent[len(recent) - self.burst] + BURST_WINDOW_S - now)
        return wait

    def acquire(self) -> None:
        """Block until one more request fits every window, then count it."""
        while True:
            wait = self.try_acquire()
            if wait <= 0:
                return
            self.sleep(wait)

    def try_acquire(self) -> float:
        """Count one more request if it fits every window now (0.0); else how long until it might."""
        with self._lock:
            now = self.clock()
            wait = self._wait_needed(now)
            if wait <= 0:
                self._count_daily()
                self._recent.append(now)
                return 0.0
            self.waited_s += wait
            return wait

    def _count_daily(self) -> None:
        if self.daily is None:
            return
        today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        if today != self._day:
            self._day, self._day_count = today, 0
        if self._day_count >= self.daily:
            tomorrow = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
            raise DailyLimitReached(self.name, tomorrow + timedelta(days=1))
        self._day_count += 1

    def hold(self, seconds: float) -> None:
        """Pause every caller of this endpoint: the server said so (429 + Retry-After)."""
        with self._lock:
            self._held_until = max(self._held_until, self.clock() + seconds)

    def spend_daily(self, remaining: int) -> None:
        """Align the daily budget with what the server reports is left."""
        if self.daily is not None:
            with self._lock:
                self._day_count = max(self._day_count, self.daily - remaining)


class Pacer:
    """The run's limiters, one per endpoint, created on first use from the spec's limits."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limiters: dict[str, Limiter] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def limiter(self, key: str, burst: int, steady: int, daily: int | None = None) -> Limiter:
        with self._lock:
            found = self._limiters.get(key)
            if found is None:
                found = Limiter(key, burst, steady, daily, clock=self._clock)
                self._limiters[key] = found
            return found

    def limiters(self) -> list[Limiter]:
        with self._lock:
            return list(self._limiters.values())
