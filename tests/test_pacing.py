"""The pacer keeps every endpoint inside its burst and steady windows, across threads."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from tap_klaviyo.pacing import BURST_WINDOW_S, STEADY_WINDOW_S, DailyLimitReached, Limiter


class FakeClock:
    """Time that only moves when someone sleeps: fast, exact tests of the windows."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += max(seconds, 0.0)


def acquired_times(limiter: Limiter, clock: FakeClock, count: int) -> list[float]:
    times = []
    for _ in range(count):
        limiter.acquire()
        times.append(clock.now)
    return times


def test_burst_and_steady_windows_hold() -> None:
    clock = FakeClock()
    limiter = Limiter("GET /api/flows", burst=3, steady=60, clock=clock, sleep=clock.sleep)
    times = acquired_times(limiter, clock, 130)
    for i, t in enumerate(times):
        in_burst = [u for u in times[: i + 1] if u > t - BURST_WINDOW_S + 1e-9]
        in_steady = [u for u in times[: i + 1] if u > t - STEADY_WINDOW_S + 1e-9]
        assert len(in_burst) <= 3
        assert len(in_steady) <= 60
    # And it is not slower than it must be: 130 requests need two full steady windows and a bit.
    assert times[-1] <= 2 * STEADY_WINDOW_S + 10 * BURST_WINDOW_S


def test_hold_pauses_every_caller() -> None:
    clock = FakeClock()
    limiter = Limiter("GET /api/lists", burst=75, steady=750, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.hold(5.0)
    limiter.acquire()
    assert clock.now >= 5.0


def test_daily_cap_raises_with_reset_time() -> None:
    clock = FakeClock()
    limiter = Limiter("POST /api/flow-values-reports", burst=1, steady=2, daily=3, clock=clock, sleep=clock.sleep)
    acquired_times(limiter, clock, 3)
    with pytest.raises(DailyLimitReached) as caught:
        limiter.acquire()
    assert caught.value.resets_at > datetime.now(timezone.utc)
    assert "resets at" in str(caught.value)


def test_threads_share_one_limiter() -> None:
    import time

    limiter = Limiter("GET /api/test", burst=5, steady=1000)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(4):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    for i, t in enumerate(stamps):
        assert len([u for u in stamps[: i + 1] if u > t - BURST_WINDOW_S + 0.01]) <= 5


def test_quota_headers_pause_the_endpoint_until_reset() -> None:
    import requests

    from tap_klaviyo.pacing import respect_quota_headers

    clock = FakeClock()
    limiter = Limiter("GET /api/lists", burst=75, steady=750, clock=clock, sleep=clock.sleep)
    spent = requests.Response()
    spent.headers.update({"RateLimit-Limit": "750", "RateLimit-Remaining": "0", "RateLimit-Reset": "7"})
    respect_quota_headers(spent, limiter)
    limiter.acquire()
    assert clock.now >= 7.0
    plenty = requests.Response()
    plenty.headers.update({"RateLimit-Remaining": "12", "RateLimit-Reset": "30"})
    before = clock.now
    respect_quota_headers(plenty, limiter)
    limiter.acquire()
    assert clock.now == before
