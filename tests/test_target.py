"""target-klaviyo against the emulator: rejects, consent guards, dry runs, faults, limits, kills and resumes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from klaviyo_emulator import DEMO_API_KEY, Emulator, EmulatorConfig, ForcedResponse
from tests.fake_clock import FakeClock
from tests.target_harness import LIST_MEMBER_SCHEMA, messages, run_target

ANY: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": True}
SUBSCRIPTION = {"type": "object", "properties": {}}


def empty(clock: FakeClock, **kw: Any) -> Emulator:
    return Emulator(EmulatorConfig(empty=True, rate_limit_scale=0.0, job_delay_s=3.0, **kw), clock=clock.monotonic)


def config(emu: Emulator, **extra: Any) -> dict[str, Any]:
    return {"api_key": DEMO_API_KEY, "api_url": emu.base_url, "job_poll_interval": 1, **extra}


def profiles(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"email": f"p{k}@example.com", "first_name": f"P{k}", "properties": {"rank": k}}
        for k in range(start, start + n)
    ]


def events(n: int) -> list[dict[str, Any]]:
    return [
        {
            "metric_name": "Placed Order",
            "datetime": f"2025-01-01T00:{k // 60 % 60:02d}:{k % 60:02d}+00:00",
            "event_properties": {"order": k, "$value": k / 2},
            "profile": {"email": f"p{k % 50}@example.com"},
        }
        for k in range(n)
    ]


NEW = range(250, 450)


def label(row: dict[str, Any]) -> Any:
    return row.get("email") or row.get("first_name") or row.get("datetime")


def written(emu: Emulator) -> list[Any]:
    return [r for r in emu.requests.snapshot() if r.method != "GET"]


def stored_events(emu: Emulator) -> list[tuple[str, Any]]:
    store = emu.account.events
    return sorted(
        (store.record(i).attrs["datetime"], json.dumps(store.record(i).attrs["event_properties"]))
        for i in (store.index_of(eid) for eid in emu.account.expected_ids("event"))
        if i is not None
    )


def test_unknown_stream_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    clock = FakeClock()
    with empty(clock) as emu:
        lines = [*messages("orders", ANY, [{"id": 1}], ["id"]), *messages("profile", ANY, profiles(3), [])]
        result = run_target(config(emu), lines, clock, tmp_path)
        assert result.error is not None
        assert "'orders'" in result.error and "profile, event, list, list_member, subscription" in result.error
        assert written(emu) == []


def test_invalid_rows_among_valid_ones_are_rejected_with_reasons(tmp_path: Path) -> None:
    clock = FakeClock()
    with empty(clock) as emu:
        rows = [
            *profiles(20),
            {"email": "not-an-email", "first_name": "Bad"},  # Klaviyo's import error, mapped back to this row
            {"first_name": "Nobody"},  # no identifier
            {"email": "big@example.com", "properties": {"blob": "x" * 120_000}},  # over 100 KB
        ]
        bad_events = [{"metric_name": "", "datetime": "2025-01-01T00:00:00Z", "profile": {"email": "p1@example.com"}}]
        bad_events.append({"metric_name": "X", "datetime": "yesterday", "profile": {"email": "p1@example.com"}})
        lines = [*messages("profile", ANY, rows, []), *messages("event", ANY, events(30) + bad_events, [])]
        result = run_target(config(emu), lines, clock, tmp_path)
        reasons = {
            (r["stream"], r["row"].get("email") or r["row"].get("first_name") or r["row"].get("datetime")): r["reason"]
            for r in result.rejects
        }
        assert reasons[("profile", "not-an-email")] == "Klaviyo import error: Invalid email address: not-an-email"
        assert reasons[("profile", "Nobody")].startswith("no profile identifier")
        assert "100 KB" in reasons[("profile", "big@example.com")]
        assert reasons[("event", "2025-01-01T00:00:00Z")].startswith("no metric_name")
        assert "not an ISO 8601" in reasons[("event", "yesterday")]
        assert (
            result.error == "5 rows were rejected (see " + str(tmp_path / "rejects.jsonl") + "); max_rejects allows 0"
        )
        assert result.outcomes["profile"] == {"written": 20, "rejected": 3}
        clock.sleep(10)
        emu.writes.settle()  # jobs are applied as requests come: none may have come since they fell due
        names = {r.attrs["email"]: r.attrs["first_name"] for r in emu.account.records("profile")}
        assert len(names) == 30 and names["p19@example.com"] == "P19"  # 20 imported, 10 more made by events
        assert len(stored_events(emu)) == 30
        (tmp_path / "again").mkdir()
        allowed = run_target(config(emu, max_rejects=5), lines, clock, tmp_path / "again")
        assert allowed.error is None


def test_dry_run_writes_nothing_and_reports(tmp_path: Path) -> None:
    clock = FakeClock()
    with empty(clock) as emu:
        lines = [
            *messages("list", ANY, [{"name": "VIP"}], []),
            *messages("profile", ANY, [*profiles(5), {"first_name": "x"}], []),
            *messages("event", ANY, events(7), []),
            *messages("list_member", LIST_MEMBER_SCHEMA, [{"list_name": "VIP", "email": "p1@example.com"}], []),
        ]
        result = run_target(config(emu, dry_run=True, max_rejects=1), lines, clock, tmp_path)
        assert result.error is None
        assert written(emu) == []
        assert result.outcomes == {
            "list": {"created": 1},
            "profile": {"written": 5, "rejected": 1},
            "event": {"written": 7},
            "list_member": {"written": 1},
        }
        assert "profile: dry run, would have: 5 written, 1 rejected" in result.summary


def test_consent_rules(tmp_path: Path) -> None:
    clock = FakeClock()
    with empty(clock) as emu:
        setup = [
            *messages("list", ANY, [{"name": "News", "opt_in_process": "single_opt_in"}], []),
            *messages("list_member", LIST_MEMBER_SCHEMA, [{"list_name": "News", "email": "in@example.com"}], []),
        ]
        assert run_target(config(emu), setup, clock, tmp_path).error is None
        rows = [
            {
                "email": "new@example.com",
                "channel": "email",
                "consent": "subscribed",
                "list_name": "News",
                "consented_at": "2024-05-01T00:00:00Z",
            },
            {"email": "in@example.com", "channel": "email", "consent": "unsubscribed", "list_name": "News"},
            {"email": "out@example.com", "channel": "email", "consent": "unsubscribed", "list_name": "News"},
            {"email": "all@example.com", "channel": "email", "consent": "unsubscribed"},
            {
                "email": "later@example.com",
                "channel": "email",
                "consent": "subscribed",
                "consented_at": "2999-01-01T00:00:00Z",
            },
            {"phone_number": "+15551234567", "channel": "push", "consent": "subscribed"},
        ]
        (tmp_path / "b").mkdir()
        result = run_target(
            config(emu, historical_import=True), messages("subscription", SUBSCRIPTION, rows, []), clock, tmp_path / "b"
        )
        reasons = {r["row"].get("email") or r["row"].get("phone_number"): r["reason"] for r in result.rejects}
        assert "from a list the profile is not in" in reasons["out@example.com"]
        assert "without a list" in reasons["all@example.com"]
        assert "in the future" in reasons["later@example.com"]
        assert "must be email or sms" in reasons["+15551234567"]
        assert len(reasons) == 4
        clock.sleep(10)
        run_target(config(emu), [], clock)  # any request applies the due jobs
        emu.writes.settle()
        book = {r.attrs["email"]: r for r in emu.account.records("profile")}
        news = next(r.id for r in emu.account.records("list"))
        assert book["new@example.com"].attrs["subscriptions"]["email"]["marketing"]["consent"] == "SUBSCRIBED"
        assert book["new@example.com"].id in emu.account.list_members(news)
        assert book["in@example.com"].id not in emu.account.list_members(news)
        assert book["in@example.com"].attrs["subscriptions"]["email"]["marketing"]["consent"] == "NEVER_SUBSCRIBED"
        (tmp_path / "c").mkdir()
        allowed = run_target(
            config(emu, allow_global_unsubscribe=True),
            messages("subscription", SUBSCRIPTION, rows[3:4], []),
            clock,
            tmp_path / "c",
        )
        assert allowed.rejects == [] and allowed.outcomes["subscription"] == {"written": 1}


def test_list_member_deletions_remove_memberships(tmp_path: Path) -> None:
    clock = FakeClock()
    with empty(clock) as emu:
        add = [{"list_name": "VIP", "email": f"p{k}@example.com"} for k in range(5)]
        assert (
            run_target(config(emu), messages("list_member", LIST_MEMBER_SCHEMA, add, []), clock, tmp_path).error is None
        )
        vip = next(r.id for r in emu.account.records("list"))
        assert len(emu.account.list_members(vip)) == 5
        remove = [{**row, "_sdc_deleted_at": "2025-01-01T00:00:00Z"} for row in add[:2]]
        refused = run_target(config(emu), messages("list_member", LIST_MEMBER_SCHEMA, remove, []), clock, tmp_path)
        assert refused.outcomes["list_member"] == {"rejected": 2}
        reasons = {r["reason"] for r in refused.rejects}
        assert reasons == {"removing a member needs the allow_deletes setting: nothing was removed"}
        assert len(emu.account.list_members(vip)) == 5
        allowed = config(emu, allow_deletes=True)
        result = run_target(allowed, messages("list_member", LIST_MEMBER_SCHEMA, remove, []), clock)
        assert result.outcomes["list_member"] == {"removed": 2}
        assert len(emu.account.list_members(vip)) == 3


def test_clear_nulls_goes_through_the_single_upsert(tmp_path: Path) -> None:
    clock = FakeClock()
    with empty(clock) as emu:
        first = [{"email": "a@example.com", "first_name": "A", "title": "Boss"}]
        run_target(config(emu), messages("profile", ANY, first, []), clock, tmp_path)
        clock.sleep(10)
        again = [{"email": "a@example.com", "title": None}]
        run_target(config(emu), messages("profile", ANY, again, []), clock)
        clock.sleep(10)
        emu.writes.settle()
        assert emu.account.records("profile")[0].attrs["title"] == "Boss"  # a null leaves it
        result = run_target(config(emu, clear_nulls=True), messages("profile", ANY, again, []), clock)
        assert result.outcomes["profile"] == {"updated": 1}
        assert emu.account.records("profile")[0].attrs["title"] is None
        assert emu.account.records("profile")[0].attrs["first_name"] == "A"  # absent: left as it is


def test_faults_including_ambiguous_ones_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    clock = FakeClock()
    with empty(clock, fault_rate=0.05, timeout_delay_s=1.5, seed=7) as emu:
        lines = [
            *messages("profile", ANY, profiles(300), []),
            *messages("event", ANY, events(3000), []),
            # 200 members that are not profiles yet: one profile import job that adds them to the list
            *messages(
                "list_member",
                LIST_MEMBER_SCHEMA,
                [{"list_name": "L", "email": f"p{k}@example.com"} for k in range(250, 450)],
                [],
            ),
            {"type": "STATE", "value": {"done": 1}},
        ]
        # Besides the random faults, one write of each kind is done and its answer lost: the target cannot tell
        # whether it happened (a list creation is the one write that is not safe to send again).
        lost = {
            "/api/profile-bulk-import-jobs": ForcedResponse(status=503, applied=True),
            "/api/event-bulk-create-jobs": ForcedResponse(kind="timeout", applied=True),
            "/api/lists": ForcedResponse(kind="drop", applied=True),
        }
        for path, forced in lost.items():
            emu.force(path, [forced], method="POST")
        result = run_target(config(emu, request_timeout=1), lines, clock, tmp_path)
        assert result.error is None and result.states == [{"done": 1}]
        clock.sleep(10)
        emu.writes.settle()
        faults = [r.fault for r in emu.requests.snapshot() if r.fault]
        assert sum(1 for f in faults if f.endswith("-forced-applied")) == 3, faults
        assert len(emu.account.expected_ids("profile")) == 450
        assert len(stored_events(emu)) == 3000  # retried event jobs deduped on unique_id
        assert len(emu.account.list_members(next(r.id for r in emu.account.records("list")))) == 200
        assert len(emu.account.records("list")) == 1


def test_a_killed_run_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    clock = FakeClock()
    with empty(clock) as emu:
        lines = [
            *messages("profile", ANY, profiles(100), []),
            *messages("event", ANY, events(2500), []),
            {"type": "STATE", "value": {"done": 1}},
        ]
        # Every attempt at the event calls fails until the run gives up: it dies with profiles written.
        emu.force("/api/event-bulk-create-jobs", [ForcedResponse(status=503)] * 100, method="POST")
        died = run_target(config(emu), lines, clock, tmp_path)
        assert died.states == []  # nothing was confirmed: no STATE
        clock.sleep(10)
        emu.writes.settle()
        assert len(emu.account.expected_ids("profile")) == 100
        assert len(stored_events(emu)) < 2500
        emu.faults.clear()
        (tmp_path / "resume").mkdir()
        resumed = run_target(config(emu), lines, clock, tmp_path / "resume")
        assert resumed.error is None and resumed.states == [{"done": 1}]
        clock.sleep(10)
        emu.writes.settle()
        assert len(stored_events(emu)) == 2500
        assert len(emu.account.expected_ids("profile")) == 100


def test_limits_at_a_fifth_are_kept(tmp_path: Path) -> None:
    """Real time: the emulator counts fixed windows at a fifth of the published limits (2/s, 30/min)."""
    with Emulator(EmulatorConfig(empty=True, rate_limit_scale=0.2, job_delay_s=1.0)) as emu:
        lines = [*messages("profile", ANY, profiles(200), []), *messages("event", ANY, events(4000), [])]
        result = run_target(config(emu), lines, None, tmp_path)
        assert result.error is None
        throttled = [r for r in emu.requests.snapshot() if r.status == 429]
        assert len(throttled) <= 1
        emu.writes.clock = lambda: float("inf")
        emu.writes.settle()
        assert len(stored_events(emu)) == 4000


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"max_rejects": -1}, "max_rejects -1 must be a whole number"),
        ({"rejects_file": "/no/such/folder/rejects.jsonl"}, "its folder does not exist"),
        ({"api_key": None}, "no credentials"),
    ],
)
def test_bad_settings_are_one_line_each(settings: dict[str, Any], message: str) -> None:
    from singer_sdk.exceptions import ConfigValidationError

    from target_klaviyo.target import TargetKlaviyo

    base = {"api_key": "pk_secret_value", "api_url": "http://127.0.0.1:9"}
    with pytest.raises(ConfigValidationError) as raised:
        TargetKlaviyo(config={k: v for k, v in {**base, **settings}.items() if v is not None})
    assert any(message in error for error in raised.value.errors)
    assert "pk_secret_value" not in " ".join(raised.value.errors)


def cli(args: list[str], stdin: str, tmp_path: Path, settings: dict[str, Any]) -> Any:
    import subprocess
    import sys

    config = tmp_path / "config.json"
    config.write_text(json.dumps(settings))
    script = Path(sys.executable).parent / "target-klaviyo"
    return subprocess.run(
        [str(script), "--config", str(config), *args],
        check=False,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_unparsable_input_is_one_line_and_never_shows_the_key(tmp_path: Path) -> None:
    with Emulator(EmulatorConfig(empty=True, rate_limit_scale=0.0)) as emu:
        settings = {"api_key": DEMO_API_KEY, "api_url": emu.base_url}
        done = cli([], "this is not json\n", tmp_path, settings)
        assert done.returncode == 1
        assert "an input line is not a Singer message" in done.stderr
        assert "Traceback" not in done.stderr and DEMO_API_KEY not in done.stderr + done.stdout
        rejected = cli(
            [], "".join(json.dumps(m) + "\n" for m in messages("profile", ANY, [{"x": 1}], [])), tmp_path, settings
        )
        assert rejected.returncode == 1 and "1 rows were rejected" in rejected.stderr
        assert "profile: 1 rejected" in rejected.stderr
        about = cli(["--about"], "", tmp_path, settings)
        assert about.returncode == 0 and "target-klaviyo" in about.stdout and "rejects_file" in about.stdout
