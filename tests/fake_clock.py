"""Time for tests where waiting is the subject: it moves only when the tap sleeps, so a Retry-After of an hour
or a backoff of a minute costs nothing, and the waits the tap chose can be read back exactly."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from unittest import mock

from klaviyo_core.clock import Clock


class FakeClock(Clock):
    def __init__(self) -> None:
        self.elapsed = 0.0
        self.sleeps: list[float] = []
        self.started = datetime.now(timezone.utc)
        self.lock = threading.Lock()

    def monotonic(self) -> float:
        return self.elapsed

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self.lock:
            self.elapsed += seconds
            self.sleeps.append(seconds)

    def now(self) -> datetime:
        return self.started + timedelta(seconds=self.elapsed)

    @contextmanager
    def driving_backoff(self) -> Iterator[None]:
        """backoff (the tap's retries) sleeps with `time.sleep` and measures with `time.monotonic` of its own
        modules: both on this clock while the block runs."""
        fake_time = SimpleNamespace(sleep=self.sleep, monotonic=self.monotonic)
        with mock.patch("backoff._sync.time", fake_time), mock.patch("backoff._common.time", fake_time):
            yield


@contextmanager
def backoff_on(clock: Clock | None) -> Iterator[None]:
    """`clock.driving_backoff()` for a FakeClock; real time otherwise."""
    if isinstance(clock, FakeClock):
        with clock.driving_backoff():
            yield
    else:
        yield
