"""Round trip: the tap reads the demo account, the target writes it into an empty account, the tap reads it back."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from klaviyo_emulator import DEMO_API_KEY, Emulator, EmulatorConfig
from tests.fake_clock import FakeClock
from tests.harness import SyncResult, run_tap, select_only
from tests.target_harness import LIST_MEMBER_SCHEMA, TargetResult, messages, run_target

PROFILE_FIELDS = ("first_name", "last_name", "organization", "title", "locale", "image", "location", "properties")
IDS = ("email", "phone_number", "external_id")
READ = {"profile", "event", "list", "profile_list"}


def read(emu: Emulator) -> SyncResult:
    config = {"api_key": DEMO_API_KEY, "api_url": emu.base_url, "event_profile_fields": list(IDS)}
    return run_tap(config, catalog=select_only(config, READ))


def identity(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(name) for name in IDS)


def as_input(source: SyncResult) -> list[dict[str, Any]]:
    """What a warehouse holds after the tap's sync, as the target's streams (memberships joined to names)."""
    profiles = {p["id"]: p for p in source.records["profile"]}
    lists = {row["id"]: row["name"] for row in source.records["list"]}
    members = [
        {"list_name": lists[row["list_id"]], **{k: profiles[row["profile_id"]].get(k) for k in IDS}}
        for row in source.records["profile_list"]
    ]
    return [
        *messages("list", source.schemas["list"], source.records["list"], ["id"]),
        *messages("profile", source.schemas["profile"], source.records["profile"], ["id"]),
        *messages("event", source.schemas["event"], source.records["event"], ["id"]),
        *messages("list_member", LIST_MEMBER_SCHEMA, members, []),
        {"type": "STATE", "value": {"bookmarks": {"done": True}}},
    ]


def snapshot(result: SyncResult) -> dict[str, Counter[Any]]:
    """The account's contents without its ids: profiles by identity, events by who/what/when, memberships by name."""
    profiles = {p["id"]: p for p in result.records["profile"]}
    lists = {row["id"]: row["name"] for row in result.records["list"]}
    return {
        "profile": Counter(
            (identity(p), tuple(repr(p.get(f)) for f in PROFILE_FIELDS)) for p in profiles.values() if any(identity(p))
        ),
        "event": Counter(
            (identity(e["profile"]), e["metric_name"], e["datetime"][:19], repr(sorted(e["event_properties"].items())))
            for e in result.records["event"]
            if any(identity(e["profile"] or {}))
        ),
        "list": Counter((row["name"], row["opt_in_process"]) for row in result.records["list"]),
        "membership": Counter(
            (lists[row["list_id"]], identity(profiles[row["profile_id"]]))
            for row in result.records["profile_list"]
            if any(identity(profiles[row["profile_id"]]))
        ),
    }


def rejected(result: TargetResult) -> Counter[str]:
    return Counter(json.dumps(r, sort_keys=True) for r in result.rejects)


@pytest.fixture(scope="module")
def source() -> SyncResult:
    with Emulator(EmulatorConfig(size="demo", rate_limit_scale=0.0)) as emu:
        return read(emu)


def write_and_read(source: SyncResult, tmp_path: Path, runs: int = 1) -> tuple[list[TargetResult], SyncResult]:
    clock = FakeClock()
    with Emulator(EmulatorConfig(empty=True, rate_limit_scale=0.0, job_delay_s=3.0), clock=clock.monotonic) as emu:
        config = {"api_key": DEMO_API_KEY, "api_url": emu.base_url, "max_rejects": 1000}
        results = [run_target(config, as_input(source), clock, tmp_path / f"run{n}") for n in range(runs)]
        clock.sleep(10)  # the last jobs are applied
        return results, read(emu)


def test_round_trip_copies_the_account(source: SyncResult, tmp_path: Path) -> None:
    for n in range(2):
        (tmp_path / f"run{n}").mkdir()
    results, copy = write_and_read(source, tmp_path, runs=2)
    first, second = results
    assert first.error is None and first.states == [{"bookmarks": {"done": True}}]
    want, got = snapshot(source), snapshot(copy)
    for kind in ("profile", "event", "list", "membership"):
        assert got[kind] == want[kind], kind
    # Rows without any identifier cannot exist in another account: rejected, each with its reason.
    no_identity = [p for p in source.records["profile"] if not any(identity(p))]
    events_without = [e for e in source.records["event"] if not any(identity(e["profile"] or {}))]
    reasons = Counter((r["stream"], r["reason"].split(":")[0]) for r in first.rejects)
    assert reasons[("profile", "no profile identifier")] == len(no_identity) > 0
    assert reasons[("event", "no profile identifier")] == len(events_without)
    # The same input again changes nothing.
    assert rejected(second) == rejected(first)
    assert second.outcomes["list"] == {"unchanged": len(source.records["list"])}
    assert copy.counts()["event"] == len(source.records["event"]) - len(events_without)
    print("round trip", {k: sum(v.values()) for k, v in got.items()}, first.outcomes, first.requests)
