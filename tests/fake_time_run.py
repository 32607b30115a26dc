"""`python -m tests.fake_time_run MODULE [ARGS]`: `python -m MODULE [ARGS]` in a real process on a FakeClock
(every Clock of the run, and backoff's retries). A test of what a user sees when every retry fails (exit code,
the one error line) then costs no real minutes of backoff and pacing, and reads back how long the process
would have waited: `{"elapsed": seconds, "sleeps": [seconds, ...]}` in the file FAKE_CLOCK_WAITS names."""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path
from unittest import mock

from klaviyo_core.clock import Clock
from tests.fake_clock import FakeClock


def main() -> None:
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    clock = FakeClock()
    try:
        with (
            clock.driving_backoff(),
            mock.patch.object(Clock, "monotonic", lambda _self: clock.monotonic()),
            mock.patch.object(Clock, "sleep", lambda _self, seconds: clock.sleep(seconds)),
            mock.patch.object(Clock, "now", lambda _self: clock.now()),
        ):
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        waits = {"elapsed": clock.elapsed, "sleeps": clock.sleeps}
        Path(os.environ["FAKE_CLOCK_WAITS"]).write_text(json.dumps(waits), encoding="utf-8")


if __name__ == "__main__":
    main()
