"""The write case of the benchmark: 100,000 profiles and 100,000 events into an empty emulated account.

target-klaviyo runs as a user runs it (the console script in a subprocess, input from a file) against the
emulator at Klaviyo's published limits and latency. The floor is what the bulk limits allow: profile import
jobs (10,000 rows a job, 10/s and 150/min) and event bulk calls (1,000 events a call, 10/s and 150/min), each
endpoint sent as early as its limits let (the two endpoints overlap), plus one job's processing delay.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.emulator import DEMO_API_KEY, Emulator, EmulatorConfig

PROFILE_ROWS_PER_JOB = 10_000
EVENTS_PER_CALL = 1_000
JOB_DELAY_S = 5.0


def write_input(path: Path, profiles: int, events: int) -> None:
    schema = {"type": "object", "properties": {}}
    with path.open("w", encoding="utf-8") as out:
        out.write(json.dumps({"type": "SCHEMA", "stream": "profile", "schema": schema, "key_properties": []}) + "\n")
        for k in range(profiles):
            row = {
                "email": f"person.{k}@example.com",
                "first_name": f"First{k}",
                "last_name": "Benchmark",
                "location": {"city": "Boston", "country": "US"},
                "properties": {"plan": ("free", "pro")[k % 2], "score": k % 97},
            }
            out.write(json.dumps({"type": "RECORD", "stream": "profile", "record": row}) + "\n")
        out.write(json.dumps({"type": "SCHEMA", "stream": "event", "schema": schema, "key_properties": []}) + "\n")
        for k in range(events):
            row = {
                "metric_name": ("Placed Order", "Viewed Product")[k % 2],
                "datetime": f"2025-{k % 12 + 1:02d}-{k % 28 + 1:02d}T{k % 24:02d}:{k % 60:02d}:{k // 60 % 60:02d}Z",
                "event_properties": {"item": f"sku-{k % 500}", "$value": k % 100 + 0.5},
                "profile": {"email": f"person.{k % profiles}@example.com"},
            }
            out.write(json.dumps({"type": "RECORD", "stream": "event", "record": row}) + "\n")
        out.write(json.dumps({"type": "STATE", "value": {"benchmark": "done"}}) + "\n")


def run(
    workdir: Path,
    latency_ms: float,
    jitter_ms: float,
    least_time: Callable[[int, int, int], float],
    *,
    profiles: int = 100_000,
    events: int = 100_000,
) -> dict[str, Any]:
    """One run; `least_time(requests, burst, steady)` is the benchmark's sliding-window floor of one endpoint."""
    source = workdir / "write-input.singer"
    write_input(source, profiles, events)
    config = EmulatorConfig(empty=True, latency_ms=latency_ms, latency_jitter_ms=jitter_ms, job_delay_s=JOB_DELAY_S)
    with Emulator(config) as emu:
        settings = workdir / "target-config.json"
        settings.write_text(json.dumps({"api_key": DEMO_API_KEY, "api_url": emu.base_url}))
        script = Path(sys.executable).parent / "target-klaviyo"
        started = time.monotonic()
        with source.open(encoding="utf-8") as stdin:
            done = subprocess.run(
                [str(script), "--config", str(settings)], stdin=stdin, capture_output=True, text=True, check=False
            )
        wall = time.monotonic() - started
        log = emu.requests.snapshot()
        emu.writes.clock = lambda: math.inf
        emu.writes.settle()
        stored_profiles = len(emu.account.expected_ids("profile"))
        stored_events = emu.account.event_count()
    by_endpoint: dict[str, int] = {}
    for entry in log:
        key = f"{entry.method} {entry.template}"
        by_endpoint[key] = by_endpoint.get(key, 0) + 1
    jobs = math.ceil(profiles / PROFILE_ROWS_PER_JOB)
    calls = math.ceil(events / EVENTS_PER_CALL)
    round_trip = latency_ms / 1000
    floor = max(least_time(jobs, 10, 150) + JOB_DELAY_S, least_time(calls, 10, 150)) + round_trip
    return {
        "exit": done.returncode,
        "stderr_tail": done.stderr.strip().splitlines()[-3:],
        "wall": wall,
        "floor": floor,
        "requests": len(log),
        "rows": profiles + events,
        "by_endpoint": by_endpoint,
        "throttled": sum(1 for e in log if e.status == 429),
        "stored_profiles": stored_profiles,
        "stored_events": stored_events,
        "jobs": jobs,
        "calls": calls,
    }


def report(say: Any, result: dict[str, Any], summary: list[list[Any]]) -> None:
    say("## 6. Writing: 100,000 profiles and 100,000 events into an empty account (target-klaviyo)")
    say()
    say(
        f"Floor: {result['jobs']} profile import jobs (10,000 rows a job) and {result['calls']} event bulk calls "
        f"(1,000 a call), each endpoint at 10/s and 150/min, overlapping, plus a job's {JOB_DELAY_S:.0f} s of "
        f"processing in the emulator and one round trip: {result['floor']:.1f} s."
    )
    say()
    say.table(["endpoint", "requests"], [[k, f"{v:,}"] for k, v in sorted(result["by_endpoint"].items())])
    per_row = result["requests"] / result["rows"]
    say(
        f"**wall {result['wall']:.1f} s, floor {result['floor']:.1f} s (wall / floor "
        f"{result['wall'] / result['floor']:.2f}); {result['requests']:,} requests for {result['rows']:,} rows "
        f"({per_row:.4f} a row); {result['throttled']} answered 429; stored {result['stored_profiles']:,} profiles, "
        f"{result['stored_events']:,} events; exit {result['exit']}**"
    )
    say()
    summary.append(
        ["write 100k profiles + 100k events: wall / floor", f"{result['wall']:.1f} s / {result['floor']:.1f} s", ""]
    )
    summary.append(["write: requests per row", f"{per_row:.4f}", ""])
