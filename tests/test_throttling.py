"""429s, with and without Retry-After, and transient failures: waited out, never data lost."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from singer_sdk.exceptions import FatalAPIError

from klaviyo_emulator import Emulator
from klaviyo_emulator.server import ForcedResponse
from tests.conftest import config_for
from tests.fake_clock import FakeClock
from tests.harness import run_cli, run_tap, select_only


def test_retry_after_is_honoured(fresh_emulator: Emulator) -> None:
    config = config_for(fresh_emulator)
    catalog = select_only(config, {"flow"})
    fresh_emulator.force(path_prefix="/api/flows", responses=[ForcedResponse(status=429, retry_after=2)])
    clock = FakeClock()
    result = run_tap(config, catalog=catalog, clock=clock)
    assert {r["id"] for r in result.records["flow"]} == fresh_emulator.account.expected_ids("flow")
    assert clock.elapsed >= 2.0  # the endpoint waited what Klaviyo asked (on the tap's clock)
    flows = [e for e in fresh_emulator.requests if e.template == "/api/flows"]
    throttled = [e for e in flows if e.status == 429]
    assert len(throttled) == 1
    # The retry is the same request (archived and live flows are read side by side).
    retried = next(e for e in flows[flows.index(throttled[0]) + 1 :] if e.raw_query == throttled[0].raw_query)
    assert retried.status == 200
    # One line for the request that needed a retry, and no per-attempt lines above DEBUG.
    assert len([line for line in result.stderr.splitlines() if "succeeded after 1 retry" in line]) == 1
    assert "Backing off" not in result.stderr


def test_429_without_retry_after_backs_off(fresh_emulator: Emulator) -> None:
    config = config_for(fresh_emulator)
    catalog = select_only(config, {"template"})
    fresh_emulator.force(
        path_prefix="/api/templates",
        responses=[
            ForcedResponse(status=429, retry_after=None),
            ForcedResponse(status=429, retry_after=None),
        ],
    )
    clock = FakeClock()
    result = run_tap(config, catalog=catalog, clock=clock)
    assert {r["id"] for r in result.records["template"]} == fresh_emulator.account.expected_ids("template")
    statuses = [e.status for e in fresh_emulator.requests if e.template == "/api/templates"]
    assert statuses[:2] == [429, 429] and statuses[2] == 200
    assert clock.elapsed > 0  # jittered backoff, on the tap's clock


def test_transient_failures_are_retried(fresh_emulator: Emulator) -> None:
    config = config_for(fresh_emulator, request_timeout=2)
    catalog = select_only(config, {"segment"})
    fresh_emulator.force(
        path_prefix="/api/segments",
        responses=[
            ForcedResponse(status=503),
            ForcedResponse(kind="truncated"),
            ForcedResponse(kind="drop"),
            ForcedResponse(status=502, body="<html>Bad gateway</html>"),
        ],
    )
    clock = FakeClock()
    result = run_tap(config, catalog=catalog, clock=clock)
    assert {r["id"] for r in result.records["segment"]} == fresh_emulator.account.expected_ids("segment")
    # Exponential backoff with full jitter: each wait at least half its step (1, 2, 4, 8 s).
    assert [w >= 0.5 * 2**i for i, w in enumerate(clock.sleeps[:4])] == [True] * 4
    # One line per request that needed retries, saying how many and why; none per attempt.
    summaries = [line for line in result.stderr.splitlines() if "succeeded after" in line]
    assert all(line.startswith("segment: GET /api/segments: succeeded after") for line in summaries)
    assert sum(int(line.split("succeeded after ")[1].split()[0]) for line in summaries) == 4
    assert "retry 1 of" not in result.stderr and "Backing off" not in result.stderr


def test_a_daily_cap_sized_retry_after_stops_with_a_clear_message(fresh_emulator: Emulator, tmp_path: Path) -> None:
    config = config_for(fresh_emulator)
    fresh_emulator.force(path_prefix="/api/accounts", responses=[ForcedResponse(status=429, retry_after=7200)])
    started = time.monotonic()
    proc = run_cli([], config, tmp_path, timeout=120)
    assert time.monotonic() - started < 60
    assert proc.returncode != 0
    assert "rate limit" in proc.stderr and "Traceback" not in proc.stderr


def test_a_dead_endpoint_is_given_up_by_backoff_after_six_attempts(fresh_emulator: Emulator) -> None:
    """backoff counts the tries and sleeps (on the fake clock): 6 attempts, 5 jittered waits, one clear error."""
    config = config_for(fresh_emulator)
    catalog = select_only(config, {"segment"})
    fresh_emulator.force(path_prefix="/api/segments", responses=[ForcedResponse(status=503)] * 20)
    clock = FakeClock()
    with pytest.raises(FatalAPIError) as caught:
        run_tap(config, catalog=catalog, clock=clock)
    assert str(caught.value).startswith("segment: GET /api/segments failed 6 times in a row; last error: ")
    assert [e.status for e in fresh_emulator.requests if e.template == "/api/segments"] == [503] * 6
    steps = [1.0, 2.0, 4.0, 8.0, 16.0]
    assert len(clock.sleeps) == 5 and all(s / 2 <= w <= s for w, s in zip(clock.sleeps, steps, strict=True))
