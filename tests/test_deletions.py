"""Deletions reach the loader: periodic full reads whose records carry a table version and end with
ACTIVATE_VERSION (tap_klaviyo/reading/full_reads.py), run through HTTP against the emulator."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from klaviyo_emulator import Emulator
from tap_klaviyo.tap import TapKlaviyo
from tests.conftest import config_for
from tests.harness import SyncResult, run_tap

#: Streams that never lose rows (or are read a slice at a time): never told to drop anything.
NEVER = {"event", "event_attribution", "metric_aggregate"} | {  # attributions follow their events
    "campaign_values_report",
    "flow_values_report",
    "flow_series_report",
    "segment_series_report",
    "form_series_report",
}
#: Incremental streams and the setting of their full reads.
INCREMENTAL = {
    "list": "full_read_days",
    "segment": "full_read_days",
    "flow": "full_read_days",
    "campaign": "full_read_days",
    "template": "full_read_days",
    "image": "full_read_days",
    "form": "full_read_days",
    "web_feed": "full_read_days",
    "profile": "profile_full_read_days",
    "global_exclusion": "profile_full_read_days",
    "list_exclusion": "profile_full_read_days",
    "profile_list": "membership_full_refresh_days",
    "profile_segment": "membership_full_refresh_days",
}
#: Children, whose reads follow their parent's.
CHILDREN_OF_INCREMENTAL = {
    "campaign_messages",
    "campaign_message_template",
    "campaign_message_send_time",
    "campaign_recipient_estimation",
    "audience_included",
    "campaign_utm_param",
    "flow_action",
    "flow_messages",
    "form_version",
}
FAST = {"report_history_days": 1, "report_lookback_days": 0}


def activated(result: SyncResult) -> dict[str, int]:
    return {m["stream"]: m["version"] for m in result.messages if m["type"] == "ACTIVATE_VERSION"}


def versions(result: SyncResult, stream: str) -> set[Any]:
    return {m.get("version") for m in result.messages if m["type"] == "RECORD" and m["stream"] == stream}


def aged(state: dict[str, Any], days: float, streams: set[str]) -> dict[str, Any]:
    """The state as if the last full read of these streams began `days` ago."""
    out = copy.deepcopy(state)
    when = (datetime.now(timezone.utc) - timedelta(days=days)).isoformat()
    for name in streams:
        out["bookmarks"][name]["full_refresh_at"] = when
    return out


def test_discovery_never_says_full_table(fresh_emulator: Emulator) -> None:
    """A catalog saying FULL_TABLE would force every later run to full table: discovery, with or without
    the setting, reports what the streams are."""
    config = config_for(fresh_emulator, emit_activate_version_messages=True)
    entries = {e["tap_stream_id"]: e for e in TapKlaviyo(config=config).catalog_dict["streams"]}
    for name in INCREMENTAL:
        assert entries[name]["replication_method"] == "INCREMENTAL", name


def test_first_run_versions_every_stream_that_can_lose_rows_and_activates_at_its_end(
    fresh_emulator: Emulator,
) -> None:
    result = run_tap(config_for(fresh_emulator, emit_activate_version_messages=True, **FAST))
    emitted = {s for s, records in result.records.items() if records}
    av = activated(result)
    assert set(av) == emitted - NEVER, set(av) ^ (emitted - NEVER)
    for stream in emitted:
        expected = {av[stream]} if stream in av else {None}
        assert versions(result, stream) == expected, stream
    # ACTIVATE_VERSION only once the read is complete: after the stream's last record, once per stream.
    for stream in av:
        kinds = [m["type"] for m in result.messages if m.get("stream") == stream and m["type"] != "SCHEMA"]
        assert kinds.count("ACTIVATE_VERSION") == 1 and kinds[-1] == "ACTIVATE_VERSION", stream
    bookmarks = result.state["bookmarks"]
    assert {n for n, s in bookmarks.items() if "full_refresh_at" in s} == set(INCREMENTAL)


def test_incremental_runs_between_full_reads_tell_the_loader_nothing(fresh_emulator: Emulator) -> None:
    config = config_for(fresh_emulator, emit_activate_version_messages=True, **FAST)
    first = run_tap(config)
    second = run_tap(config, state=first.state)
    av = activated(second)
    assert not set(av) & (set(INCREMENTAL) | CHILDREN_OF_INCREMENTAL), av
    assert {"account", "metric", "tag", "coupon", "coupon_code", "catalog_item"} <= set(av)  # full table
    for stream in INCREMENTAL.keys() | CHILDREN_OF_INCREMENTAL:
        assert versions(second, stream) <= {None}, stream
    for name in INCREMENTAL:
        assert second.state["bookmarks"][name]["full_refresh_at"] == first.state["bookmarks"][name]["full_refresh_at"]


def test_a_due_full_read_drops_deleted_records_and_leaves_correct_bookmarks(fresh_emulator: Emulator) -> None:
    account = fresh_emulator.account
    config = config_for(fresh_emulator, emit_activate_version_messages=True, **FAST)
    first = run_tap(config)

    list_id = sorted(account.expected_ids("list"))[0]
    campaign_id = sorted(account.expected_ids("campaign"))[0]
    member_list = sorted(account.expected_ids("list"))[1]
    removed = sorted(account.list_members(member_list))[0]
    account.delete("list", list_id)
    account.delete("campaign", campaign_id)
    account.remove_list_member(member_list, removed)

    # Due: list and campaign (full_read_days, 1) and profile_list (membership_full_refresh_days, 7).
    state = aged(aged(first.state, 2, {"list", "campaign"}), 8, {"profile_list"})
    result = run_tap(config, state=state)
    av = activated(result)
    assert {"list", "campaign", "campaign_messages", "audience_included", "profile_list"} <= set(av)
    assert not {"segment", "profile", "profile_segment", "flow"} & set(av)  # not due

    assert {r["id"] for r in result.records["list"]} == account.expected_ids("list")
    assert {r["id"] for r in result.records["campaign"]} == account.expected_ids("campaign")
    assert campaign_id not in {r["campaign_id"] for r in result.records["campaign_messages"]}
    memberships = {(r["list_id"], r["profile_id"]) for r in result.records["profile_list"]}
    assert memberships == {(g, p) for g in account.expected_ids("list") for p in account.list_members(g)}
    assert (member_list, removed) not in memberships

    bookmarks = result.state["bookmarks"]
    assert bookmarks["list"]["replication_key_value"] == max(r["updated"] for r in result.records["list"])
    for partition in bookmarks["campaign"]["partitions"]:  # none moved back, none lost
        before = next(
            p for p in first.state["bookmarks"]["campaign"]["partitions"] if p["context"] == partition["context"]
        )
        assert partition.get("replication_key_value", "") >= before.get("replication_key_value", "")
    assert bookmarks["list"]["full_refresh_at"] > state["bookmarks"]["list"]["full_refresh_at"]
    assert bookmarks["segment"]["full_refresh_at"] == state["bookmarks"]["segment"]["full_refresh_at"]


def test_without_the_setting_only_memberships_are_reread_and_nothing_is_activated(fresh_emulator: Emulator) -> None:
    config = config_for(fresh_emulator, **FAST)
    first = run_tap(config)
    assert not activated(first)
    assert {n for n, s in first.state["bookmarks"].items() if "full_refresh_at" in s} == {
        "profile_list",
        "profile_segment",
    }
    second = run_tap(config, state=aged(first.state, 8, {"profile_list"}))
    assert not activated(second)
    assert len(second.records["profile_list"]) == len(first.records["profile_list"])  # re-read in full
    assert len(second.records["list"]) < len(first.records["list"])  # incremental


def test_a_stream_stopped_early_is_not_activated(fresh_emulator: Emulator) -> None:
    """A key without the scope of a stream: skipped with a warning, and its table in the loader left alone."""
    key = "pk_scoped_key_without_flows_and_campaigns"
    fresh_emulator.add_api_key(key, scopes=["profiles:read", "lists:read", "segments:read", "accounts:read"])
    config = {
        **config_for(fresh_emulator, emit_activate_version_messages=True, skip_streams_without_scope=True, **FAST),
        "api_key": key,
    }
    result = run_tap(config)
    av = activated(result)
    assert not {"flow", "flow_action", "campaign", "campaign_messages"} & set(av), av
    assert {"list", "profile_list", "segment"} <= set(av)
    assert "full_refresh_at" not in result.state["bookmarks"].get("flow", {})


def test_batch_files_are_never_activated(fresh_emulator: Emulator, tmp_path: Path) -> None:
    """Batch files carry no table version: an ACTIVATE_VERSION would make the loader delete every row."""
    batch_config = {"encoding": {"format": "jsonl"}, "storage": {"root": tmp_path.as_uri(), "prefix": "k-"}}
    config = config_for(fresh_emulator, emit_activate_version_messages=True, batch_config=batch_config, **FAST)
    result = run_tap(config)
    assert any(m["type"] == "BATCH" for m in result.messages)
    assert not activated(result)
    assert "full_refresh_at" not in result.state["bookmarks"].get("list", {})
