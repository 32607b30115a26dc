"""target-klaviyo's pipelined write path (issue 25), through HTTP against the emulator on a fake clock.

Jobs are held incomplete by the test itself (the emulator's job clock stands still until the test lets it go),
so what is asserted about jobs in flight never depends on how fast the machine reads.
"""

from __future__ import annotations

import io
import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import target_klaviyo.target
from klaviyo_emulator import DEMO_API_KEY, Emulator, EmulatorConfig, ForcedResponse
from tests.fake_clock import FakeClock
from tests.target_harness import LIST_MEMBER_SCHEMA, messages, run_target

ANY: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": True}
JOBS = "/api/profile-bulk-import-jobs"


def profiles(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"email": f"p{k}@example.com", "first_name": f"P{k}"} for k in range(start, start + n)]


def events(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "metric_name": "Placed Order",
            "datetime": f"2025-01-01T{k // 3600 % 24:02d}:{k // 60 % 60:02d}:{k % 60:02d}+00:00",
            "event_properties": {"order": k, "total": 19.99},
            "profile": {"email": f"p{k % 50}@example.com"},
        }
        for k in range(start, start + n)
    ]


def config(emu: Emulator, **extra: Any) -> dict[str, Any]:
    return {"api_key": DEMO_API_KEY, "api_url": emu.base_url, "job_poll_interval": 1, **extra}


class JobGate:
    """The emulator's job clock, stopped until the test opens it: no job completes while it is shut."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.open = False
        emu.writes.clock = self.now

    def now(self) -> float:
        return math.inf if self.open else 0.0

    def release(self) -> None:
        self.open = True


class StateWatch(io.StringIO):
    """stdout that records, at each STATE line, what the test's probe says of the account at that moment."""

    def __init__(self, probe: Any) -> None:
        super().__init__()
        self.probe = probe
        self.seen: list[tuple[dict[str, Any], Any]] = []

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self.seen.append((json.loads(line), self.probe()))
        return super().write(text)


@contextmanager
def running(
    target_config: dict[str, Any], lines: list[dict[str, Any]], clock: FakeClock, stdout: io.StringIO | None = None
) -> Iterator[dict[str, Any]]:
    """The target in a thread (its result in the dict once it ends), so the test acts while jobs are held."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        outcome["result"] = run_target(target_config, lines, clock, stdout=stdout)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield outcome
    finally:
        thread.join(120)
        assert not thread.is_alive(), "the target did not end"


def wait_for(condition: Any, what: str) -> None:
    """Until the target has done something (a guard against hanging, not a timing assertion)."""
    done = threading.Event()
    for _ in range(1200):
        if condition():
            return
        done.wait(0.05)
    pytest.fail(f"the target never {what}")


def posts(emu: Emulator, template: str) -> list[Any]:
    return [r for r in emu.requests.snapshot() if r.method == "POST" and r.template == template]


def test_jobs_of_successive_batches_and_streams_are_in_flight_together() -> None:
    """Four profile batches' jobs and every event call go out while no job has completed."""
    clock = FakeClock()
    with Emulator(EmulatorConfig(empty=True, rate_limit_scale=0.0), clock=clock.monotonic) as emu:
        gate = JobGate(emu)
        lines = [
            *messages("profile", ANY, profiles(35_000), []),
            *messages("event", ANY, events(3_000), []),
            {"type": "STATE", "value": {"done": 1}},
        ]
        with running(config(emu), lines, clock) as outcome:
            wait_for(lambda: len(posts(emu, "/api/event-bulk-create-jobs")) == 3, "sent the event calls")
            assert len(posts(emu, JOBS)) == 4  # 10,000 rows a job: all four in flight, none complete
            assert all(r.attrs["status"] != "complete" for r in emu.account.records("profile-bulk-import-job"))
            assert "result" not in outcome  # it waits for the jobs before its STATE
            gate.release()
        result = outcome["result"]
        assert result.error is None
        assert result.states == [{"done": 1}]
        assert result.outcomes == {"profile": {"written": 35_000}, "event": {"written": 3_000}}
        assert len(emu.account.expected_ids("profile")) == 35_000 + 0  # events' profiles are among them
        sent = emu.requests.snapshot()
        polls = [r for r in sent if r.method == "GET" and r.template == JOBS]
        assert polls, "one listing covers every job in flight"
        assert all(("sort", "-created_at") in r.query for r in polls)  # the newest jobs: ours, with their ends
        assert not [r for r in sent if r.template == JOBS + "/{job_id}"]  # no job read one by one


def test_state_never_passes_a_row_whose_job_later_reports_an_import_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A STATE after an invalid row is written only once that row's job is complete and its error read."""
    monkeypatch.setattr(target_klaviyo.target, "STATE_EVERY_S", 0.0)  # a STATE line at every release
    clock = FakeClock()
    rejects = tmp_path / "rejects.jsonl"
    with Emulator(EmulatorConfig(empty=True, rate_limit_scale=0.0), clock=clock.monotonic) as emu:
        gate = JobGate(emu)
        rows = profiles(12_000)
        rows[5] = {"email": "p5-at-example.com"}  # passed on as it is: Klaviyo's import refuses it
        lines: list[dict[str, Any]] = [{"type": "SCHEMA", "stream": "profile", "schema": ANY, "key_properties": []}]
        for k, row in enumerate(rows):
            lines.append({"type": "RECORD", "stream": "profile", "record": row})
            if k % 1000 == 999:
                lines.append({"type": "STATE", "value": {"rows": k + 1}})

        def rejected() -> int:
            return len(rejects.read_text().splitlines()) if rejects.exists() else 0

        watch = StateWatch(rejected)
        target_config = config(emu, rejects_file=str(rejects), max_rejects=5)
        with running(target_config, lines, clock, watch) as outcome:
            wait_for(lambda: len(posts(emu, JOBS)) == 2, "submitted both jobs")
            assert watch.seen == []  # nothing confirmed: no STATE at all
            gate.release()
        result = outcome["result"]
        assert result.error is None
        assert result.outcomes["profile"] == {"written": 11_999, "rejected": 1}
        assert "Invalid email" in json.loads(rejects.read_text().splitlines()[0])["reason"]
        assert result.states[-1] == {"rows": 12_000}
        # Every STATE line that covers row 5 was written after row 5's reject was.
        assert watch.seen and all(rejected_then >= 1 for _state, rejected_then in watch.seen)


def test_a_run_killed_with_jobs_in_flight_resumes_from_its_last_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after its first STATE line (every request refused from then on, calls and jobs in flight), then
    resumed from the last STATE it wrote: every row is in Klaviyo once."""
    monkeypatch.setattr(target_klaviyo.target, "STATE_EVERY_S", 0.0)  # a STATE line at every release
    clock = FakeClock()
    with Emulator(EmulatorConfig(empty=True, rate_limit_scale=0.0, job_delay_s=3.0), clock=clock.monotonic) as emu:
        lines: list[dict[str, Any]] = []
        for part in range(6):
            lines += messages("profile", ANY, profiles(2_000, part * 2_000), [])
            lines += messages("event", ANY, events(2_000, part * 2_000), [])
            lines.append({"type": "STATE", "value": {"part": part}})

        killed = threading.Event()

        def kill() -> None:
            if not killed.is_set():
                killed.set()
                for prefix in ("/api/profile-bulk-import-jobs", "/api/event-bulk-create-jobs", "/api/profiles"):
                    for method in ("GET", "POST"):
                        emu.force(prefix, [ForcedResponse(status=401)] * 10_000, method=method)

        watch = StateWatch(kill)
        with running(config(emu, batch_size_rows=1_000), lines, clock, watch) as outcome:
            pass
        died = outcome["result"]
        assert died.error is not None and ("401" in died.error or "key" in died.error.lower())
        assert watch.seen, "a STATE line was written before the kill"
        last = watch.seen[-1][0]
        assert last != {"part": 5}  # the kill came before the end
        emu.faults.clear()
        clock.sleep(10)
        emu.writes.settle()
        position = lines.index({"type": "STATE", "value": last})
        schemas = [line for line in lines if line["type"] == "SCHEMA"]
        resumed = run_target(config(emu), [*schemas, *lines[position + 1 :]], clock, tmp_path)
        assert resumed.error is None and resumed.states == [{"part": 5}]
        clock.sleep(10)
        emu.writes.settle()
        assert len(emu.account.expected_ids("profile")) == 12_000
        assert emu.account.event_count() == 12_000  # nothing lost, nothing twice (unique_id per event)


def test_numbers_keep_the_type_they_were_read_with() -> None:
    """19.99 reaches Klaviyo as 19.99 and 7 as 7 (the SDK's reader parses numbers as Decimal)."""
    clock = FakeClock()
    with Emulator(EmulatorConfig(empty=True, rate_limit_scale=0.0), clock=clock.monotonic) as emu:
        row = {
            "metric_name": "Paid",
            "datetime": "2025-03-01T00:00:00Z",
            "value": 19.99,
            "profile": {"email": "n@x.io"},
        }
        text = json.dumps({"type": "SCHEMA", "stream": "event", "schema": ANY, "key_properties": []}) + "\n"
        text += '{"type": "RECORD", "stream": "event", "record": ' + json.dumps(row)[:-1]
        text += ', "event_properties": {"price": 0.1, "count": 7, "big": 12345678901234567890.123}}}\n'
        result = run_target(config(emu), text, clock)
        assert result.error is None
        body = posts(emu, "/api/event-bulk-create-jobs")[0].body
        assert '"value":19.99' in body and '"price":0.1' in body and '"count":7' in body
        assert '"big":12345678901234567890.123' in body


def test_new_members_are_imported_into_their_list_without_look_ups() -> None:
    """2,000 members, half of them people who are not profiles yet: one job adds them all, no look-up."""
    clock = FakeClock()
    with Emulator(EmulatorConfig(empty=True, rate_limit_scale=0.0, job_delay_s=3.0), clock=clock.monotonic) as emu:
        existing = run_target(config(emu), messages("profile", ANY, profiles(1_000), []), clock)
        assert existing.error is None
        members = [{"list_name": "VIP", "email": f"p{k}@example.com"} for k in range(0, 2_000)]
        before = len(emu.requests.snapshot())
        result = run_target(config(emu), messages("list_member", LIST_MEMBER_SCHEMA, members, []), clock)
        assert result.error is None and result.outcomes["list_member"] == {"written": 2_000}
        sent = emu.requests.snapshot()[before:]
        assert not [r for r in sent if r.template == "/api/profiles"]  # no look-ups
        assert not [r for r in sent if r.template == "/api/profile-import"]  # no single creates
        jobs = [r for r in sent if r.method == "POST" and r.template == JOBS]
        assert len(jobs) == 1 and '"lists"' in (jobs[0].body or "")
        clock.sleep(10)
        emu.writes.settle()
        vip = next(r.id for r in emu.account.records("list") if r.attrs["name"] == "VIP")
        assert len(emu.account.list_members(vip)) == 2_000
        assert len(emu.account.expected_ids("profile")) == 2_000
        new_member_requests = len([r for r in sent if r.method != "GET" or r.template == JOBS])
        assert new_member_requests / 1_000 <= 0.01
