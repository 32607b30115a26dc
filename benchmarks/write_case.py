"""The write case of the benchmark: what a team pushes nightly, into an empty emulated account (target-klaviyo).

100,000 profiles, 100,000 events, 50,000 list memberships (half of them people who are not profiles yet) and
20,000 subscriptions, run as a user runs it (the console script in a subprocess, input from a file) against
the emulator at Klaviyo's published limits and latency, with bulk jobs that complete after 5 s and after 60 s.

The floor: each endpoint's requests sent as early as its limits allow (the endpoints overlap), plus one job's
latency for the whole run (jobs of every batch are in flight together), plus one round trip.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from klaviyo_emulator import DEMO_API_KEY, Emulator, EmulatorConfig

PROFILE_ROWS_PER_JOB = 10_000
EVENTS_PER_CALL = 1_000
SUBSCRIBES_PER_CALL = 1_000
JOB_DELAYS_S = (5.0, 60.0)
MEMBER_LIST = "Benchmark members"
NEWSLETTER = "Benchmark newsletter"


class PeakMemory:
    """The target's peak RSS: the kernel's high-water mark of its own memory (VmHWM), read until it exits.

    Not wait4's ru_maxrss: that counts the forked child before its exec, which shares this (emulator-holding)
    process's pages."""

    def __init__(self, pid: int) -> None:
        self.status = Path(f"/proc/{pid}/status")
        self.mb = 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)
        self.thread.start()

    def watch(self) -> None:
        while not self.done.wait(0.2):
            try:
                text = self.status.read_text()
            except OSError:
                return
            for line in text.splitlines():
                if line.startswith("VmHWM:"):
                    self.mb = max(self.mb, int(line.split()[1]) / 1024)

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


def write_input(path: Path, profiles: int, events: int, members: int, subscriptions: int) -> None:
    """The nightly push as Singer messages: members alternate between existing profiles and new people."""
    schema = {"type": "object", "properties": {}}

    def header(stream: str) -> str:
        return json.dumps({"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": []}) + "\n"

    def record(stream: str, row: dict[str, Any]) -> str:
        return json.dumps({"type": "RECORD", "stream": stream, "record": row}) + "\n"

    with path.open("w", encoding="utf-8") as out:
        out.write(header("profile"))
        for k in range(profiles):
            row = {
                "email": f"person.{k}@example.com",
                "first_name": f"First{k}",
                "last_name": "Benchmark",
                "location": {"city": "Boston", "country": "US"},
                "properties": {"plan": ("free", "pro")[k % 2], "score": k % 97, "ltv": k % 1000 + 0.99},
            }
            out.write(record("profile", row))
        out.write(json.dumps({"type": "STATE", "value": {"benchmark": "profiles"}}) + "\n")
        out.write(header("event"))
        for k in range(events):
            row = {
                "metric_name": ("Placed Order", "Viewed Product")[k % 2],
                "datetime": f"2025-{k % 12 + 1:02d}-{k % 28 + 1:02d}T{k % 24:02d}:{k % 60:02d}:{k // 60 % 60:02d}Z",
                "event_properties": {"item": f"sku-{k % 500}", "$value": k % 100 + 0.5},
                "profile": {"email": f"person.{k % max(1, profiles)}@example.com"},
            }
            out.write(record("event", row))
        out.write(json.dumps({"type": "STATE", "value": {"benchmark": "events"}}) + "\n")
        out.write(header("list_member"))
        for k in range(members):
            email = f"person.{k // 2}@example.com" if k % 2 == 0 else f"member.{k}@example.com"
            out.write(record("list_member", {"list_name": MEMBER_LIST, "email": email}))
        out.write(header("subscription"))
        for k in range(subscriptions):
            row = {"email": f"person.{k}@example.com", "channel": "email", "consent": "subscribed"}
            out.write(record("subscription", {**row, "list_name": NEWSLETTER}))
        out.write(json.dumps({"type": "STATE", "value": {"benchmark": "done"}}) + "\n")


def run(
    workdir: Path,
    latency_ms: float,
    jitter_ms: float,
    least_time: Callable[[int, int, int], float],
    *,
    job_delay_s: float = JOB_DELAYS_S[0],
    profiles: int = 100_000,
    events: int = 100_000,
    members: int = 50_000,
    subscriptions: int = 20_000,
    dry_run: bool = False,
) -> dict[str, Any]:
    """One run; `least_time(requests, burst, steady)` is the benchmark's sliding-window floor of one endpoint.
    `dry_run`: the target reads and checks the input and writes nothing (its reading alone)."""
    source = workdir / "write-input.singer"
    write_input(source, profiles, events, members, subscriptions)
    config = EmulatorConfig(empty=True, latency_ms=latency_ms, latency_jitter_ms=jitter_ms, job_delay_s=job_delay_s)
    with Emulator(config) as emu:
        settings = workdir / "target-config.json"
        settings.write_text(json.dumps({"api_key": DEMO_API_KEY, "api_url": emu.base_url, "dry_run": dry_run}))
        script = Path(sys.executable).parent / "target-klaviyo"
        started = time.monotonic()
        out_path, err_path = workdir / "target.out", workdir / "target.err"
        with source.open(encoding="utf-8") as stdin, out_path.open("w") as out, err_path.open("w") as err:
            process = subprocess.Popen([str(script), "--config", str(settings)], stdin=stdin, stdout=out, stderr=err)
            peak = PeakMemory(process.pid)
            _pid, status, usage = os.wait4(process.pid, 0)  # the target's own CPU time
            peak.stop()
        returncode = os.waitstatus_to_exitcode(status)
        stdout, stderr = out_path.read_text(), err_path.read_text()
        wall = time.monotonic() - started
        log = emu.requests.snapshot()
        emu.writes.clock = lambda: math.inf
        emu.writes.settle()
        stored_profiles = len(emu.account.expected_ids("profile"))
        stored_events = emu.account.event_count()
        lists = {rec.attrs["name"]: rec.id for rec in emu.account.records("list")}
        stored_members = len(emu.account.list_members(lists[MEMBER_LIST])) if MEMBER_LIST in lists else 0
    by_endpoint: dict[str, int] = {}
    for entry in log:
        key = f"{entry.method} {entry.template or entry.path}"
        by_endpoint[key] = by_endpoint.get(key, 0) + 1
    jobs = math.ceil(profiles / PROFILE_ROWS_PER_JOB) + math.ceil(members / PROFILE_ROWS_PER_JOB)
    calls = math.ceil(events / EVENTS_PER_CALL)
    subscribe_calls = math.ceil(subscriptions / SUBSCRIBES_PER_CALL)
    round_trip = latency_ms / 1000
    floor = (
        max(least_time(jobs, 10, 150) + job_delay_s, least_time(calls, 10, 150), least_time(subscribe_calls, 75, 750))
        + round_trip
    )
    new_members = members // 2
    member_requests = sum(
        1
        for e in log
        if e.method == "POST" and e.template == "/api/profile-bulk-import-jobs" and "lists" in (e.body or "")
    )
    return {
        "exit": returncode,
        "stderr_tail": stderr.strip().splitlines()[-3:],
        "states": [line for line in stdout.splitlines() if line.strip()],
        "wall": wall,
        "floor": floor,
        "job_delay_s": job_delay_s,
        "requests": len(log),
        "rows": profiles + events + members + subscriptions,
        "by_endpoint": by_endpoint,
        "throttled": sum(1 for e in log if e.status == 429),
        "stored_profiles": stored_profiles,
        "stored_events": stored_events,
        "stored_members": stored_members,
        "members": members,
        "new_members": new_members,
        "member_requests": member_requests,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": peak.mb,
        "jobs": jobs,
        "calls": calls,
        "subscribe_calls": subscribe_calls,
    }


def report(say: Any, result: dict[str, Any], summary: list[list[Any]], reading: dict[str, Any]) -> None:
    delay = result["job_delay_s"]
    # The last job can go only once its rows are read: reading the input (the dry run's wall) plus one job.
    read_floor = max(result["floor"], reading["wall"] + delay)
    say(
        f"### Jobs completing after {delay:.0f} s: {result['rows']:,} rows "
        f"({result['stored_profiles']:,} profiles stored, {result['stored_events']:,} events, "
        f"{result['stored_members']:,} members)"
    )
    say()
    say(
        f"Floor: {result['jobs']} profile import jobs (10,000 rows a job, the members' jobs adding them to their "
        f"list), {result['calls']} event bulk calls (1,000 a call), both at 10/s and 150/min, and "
        f"{result['subscribe_calls']} subscription calls at 75/s and 750/min, overlapping, plus one job's "
        f"{delay:.0f} s and one round trip: **{result['floor']:.1f} s**."
    )
    say()
    say.table(["endpoint", "requests"], [[k, f"{v:,}"] for k, v in sorted(result["by_endpoint"].items())])
    per_row = result["requests"] / result["rows"]
    per_new = result["member_requests"] / max(1, result["new_members"])
    rate = result["rows"] / result["cpu_s"] if result["cpu_s"] else float("nan")
    say(
        f"**wall {result['wall']:.1f} s, floor {result['floor']:.1f} s (wall / floor "
        f"{result['wall'] / result['floor']:.2f}); {result['requests']:,} requests for {result['rows']:,} rows "
        f"({per_row:.4f} a row; {per_new:.4f} a new member); {result['throttled']} answered 429; target process "
        f"{result['cpu_s']:.1f} CPU-s ({rate:,.0f} rows per CPU-second), peak RSS {result['peak_rss_mb']:.0f} MB; "
        f"{len(result['states'])} STATE lines; exit {result['exit']}**"
    )
    say()
    say(
        f"Reading the input alone (the same run with `dry_run`, nothing written) took {reading['wall']:.1f} s and "
        f"{reading['cpu_s']:.1f} CPU-s; the last job can leave only once its rows are read, so this run's floor "
        f"with the reading counted is {read_floor:.1f} s: **wall / that floor {result['wall'] / read_floor:.2f}**."
    )
    say()
    label = f"write (jobs {delay:.0f} s)"
    summary.append([f"{label}: wall / floor", f"{result['wall']:.1f} s / {result['floor']:.1f} s", "<= 1.2x"])
    summary.append([f"{label}: wall / floor with the reading", f"{result['wall']:.1f} s / {read_floor:.1f} s", ""])
    summary.append([f"{label}: 429s", str(result["throttled"]), "0"])
    summary.append([f"{label}: peak RSS", f"{result['peak_rss_mb']:.0f} MB", "< 300 MB"])
    summary.append([f"{label}: requests per new member", f"{per_new:.4f}", "<= 0.01"])


def section(  # noqa: PLR0917 (the benchmark's sections all take what run.py measured with)
    say: Any,
    workdir: Path,
    latency_ms: float,
    jitter_ms: float,
    least_time: Callable[[int, int, int], float],
    summary: list[list[Any]],
    *,
    million: bool = False,
) -> None:
    say("## 6. Writing: the nightly push into an empty account (target-klaviyo)")
    say()
    reading = run(workdir, latency_ms, jitter_ms, least_time, dry_run=True)
    for delay in JOB_DELAYS_S:
        report(say, run(workdir, latency_ms, jitter_ms, least_time, job_delay_s=delay), summary, reading)
    if million:
        result = run(
            workdir,
            latency_ms,
            jitter_ms,
            least_time,
            job_delay_s=60.0,
            profiles=1_000_000,
            events=0,
            members=0,
            subscriptions=0,
        )
        reading = run(
            workdir,
            latency_ms,
            jitter_ms,
            least_time,
            profiles=1_000_000,
            events=0,
            members=0,
            subscriptions=0,
            dry_run=True,
        )
        report(say, result, summary, reading)
