"""Time for tests where waiting is the subject: it moves only when the tap sleeps, so a Retry-After of an hour
or a backoff of a minute costs nothing, and the waits the tap chose can be read back exactly."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from tap_klaviyo.api.clock import Clock


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
