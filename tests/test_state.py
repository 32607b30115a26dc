"""Incremental runs: the second run picks up exactly what changed, ties and late members included."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from klaviyo_emulator import Emulator
from tests.conftest import config_for
from tests.harness import run_tap, select_only


def test_second_run_reads_only_new_events(fresh_emulator: Emulator) -> None:
    config = config_for(fresh_emulator)
    catalog = select_only(config, {"event"})
    first = run_tap(config, catalog=catalog)
    assert len(first.records["event"]) == fresh_emulator.account.event_count()
    bookmark = first.state["bookmarks"]["event"]["replication_key_value"]
    # The bookmark never passes the time the run started, future-dated events notwithstanding.
    assert bookmark <= datetime.now(timezone.utc).isoformat()

    when = datetime.now(timezone.utc) - timedelta(seconds=5)
    new_ids = set(fresh_emulator.account.append_events(25, when))
    second = run_tap(config, state=first.state, catalog=catalog)
    emitted = {r["id"] for r in second.records["event"]}
    assert new_ids <= emitted
    # Re-reads are bounded by the lookback (1 day by default): late arrivals, the future-dated events.
    assert len(emitted - new_ids) < 50
    floor = (datetime.fromisoformat(bookmark) - timedelta(days=1)).isoformat()
    assert all(r["datetime"] >= floor for r in second.records["event"])


def test_events_sharing_the_bookmark_timestamp_are_not_lost(fresh_emulator: Emulator) -> None:
    config = config_for(fresh_emulator)
    catalog = select_only(config, {"event"})
    first = run_tap(config, catalog=catalog)
    bookmark = first.state["bookmarks"]["event"]["replication_key_value"]
    tied = set(fresh_emulator.account.append_events(3, datetime.fromisoformat(bookmark)))
    second = run_tap(config, state=first.state, catalog=catalog)
    assert tied <= {r["id"] for r in second.records["event"]}


def test_new_members_of_an_unchanged_list_are_caught(fresh_emulator: Emulator) -> None:
    config = config_for(fresh_emulator)
    catalog = select_only(config, {"profile_list", "list"})
    first = run_tap(config, catalog=catalog)
    list_id = sorted(fresh_emulator.account.expected_ids("list"))[0]
    profile_id = sorted(fresh_emulator.account.expected_ids("profile"))[-1]
    fresh_emulator.account.remove_list_member(list_id, profile_id)
    fresh_emulator.account.add_list_member(list_id, profile_id, datetime.now(timezone.utc))
    second = run_tap(config, state=first.state, catalog=catalog)
    rows = {(r["list_id"], r["profile_id"]) for r in second.records["profile_list"]}
    assert (list_id, profile_id) in rows
    # The list itself did not change, and unchanged memberships are not re-read.
    assert len(second.records["profile_list"]) < len(first.records["profile_list"]) / 2


def test_lists_with_greater_than_only_filter_lose_no_ties(fresh_emulator: Emulator) -> None:
    config = config_for(fresh_emulator)
    catalog = select_only(config, {"list", "segment", "profile"})
    first = run_tap(config, catalog=catalog)
    bookmark = first.state["bookmarks"]["list"]["replication_key_value"]
    list_id = sorted(fresh_emulator.account.expected_ids("list"))[0]
    fresh_emulator.account.touch("list", list_id, datetime.fromisoformat(bookmark))
    second = run_tap(config, state=first.state, catalog=catalog)
    assert list_id in {r["id"] for r in second.records["list"]}


def test_start_and_end_date_bound_events(fresh_emulator: Emulator) -> None:
    start, end = "2024-01-01T00:00:00+00:00", "2024-07-01T00:00:00+00:00"
    config = config_for(fresh_emulator, start_date=start, end_date=end)
    result = run_tap(config, catalog=select_only(config, {"event", "metric"}))
    events = result.records["event"]
    assert events
    assert all(start <= r["datetime"] < end for r in events)
    # metric is never filtered by start_date.
    assert {r["id"] for r in result.records["metric"]} == fresh_emulator.account.expected_ids("metric")


def test_state_never_holds_a_secret(full_sync: tuple[Any, list[Any]]) -> None:
    result, _ = full_sync
    from klaviyo_emulator import DEMO_API_KEY

    assert DEMO_API_KEY not in result.stdout + result.stderr
