"""A full sync of the emulated account: every stream, every record valid, nothing missing or doubled."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from tap_klaviyo.streams import STREAM_TYPES
from tests.harness import ID_STREAMS, membership_rows

ALL_STREAMS = sorted(cls.name for cls in STREAM_TYPES)  # type: ignore[misc]


def test_every_stream_emits_records(full_sync: tuple[Any, list[Any]]) -> None:
    result, _ = full_sync
    empty = [name for name in ALL_STREAMS if not result.records.get(name)]
    assert not empty, f"streams without records: {empty}"
    assert set(result.schemas) >= set(ALL_STREAMS)


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_records_match_their_schema(full_sync: tuple[Any, list[Any]], stream: str) -> None:
    result, _ = full_sync
    validator = jsonschema.Draft7Validator(result.schemas[stream], format_checker=jsonschema.FormatChecker())
    for record in result.records[stream]:
        errors = [e.message for e in validator.iter_errors(record)]
        assert not errors, f"{stream} record {record.get('id')}: {errors[:3]}"
        for column, prop in result.schemas[stream]["properties"].items():
            if prop.get("format") == "date-time" and record.get(column):
                assert record[column].endswith("+00:00"), (stream, column, record[column])


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_primary_keys_are_unique(full_sync: tuple[Any, list[Any]], stream: str) -> None:
    result, _ = full_sync
    keys = result.key_properties[stream]
    assert keys, stream
    seen = [tuple(record[k] for k in keys) for record in result.records[stream]]
    assert all(all(part is not None for part in key) for key in seen)
    assert len(seen) == len(set(seen)), f"{stream}: {len(seen) - len(set(seen))} duplicate keys"


@pytest.mark.parametrize(("stream", "resource"), sorted(ID_STREAMS.items()))
def test_nothing_is_missing(full_sync: tuple[Any, list[Any]], emulator: Any, stream: str, resource: str) -> None:
    result, _ = full_sync
    emitted = {record["id"] for record in result.records[stream]}
    expected = emulator.account.expected_ids(resource)
    assert expected, resource
    assert emitted == expected, f"{stream}: missing {len(expected - emitted)}, unexpected {len(emitted - expected)}"


def test_membership_rows_cover_every_list_and_segment(full_sync: tuple[Any, list[Any]], emulator: Any) -> None:
    result, _ = full_sync
    for stream, group_key, resource in (
        ("profile_list", "list_id", "list"),
        ("profile_segment", "segment_id", "segment"),
    ):
        rows = {(r[group_key], r["profile_id"]) for r in result.records[stream]}
        assert rows == membership_rows(emulator.account, resource), stream
        assert all(set(r) == {group_key, "profile_id", "joined_group_at"} for r in result.records[stream])


def test_record_shape(full_sync: tuple[Any, list[Any]]) -> None:
    result, _ = full_sync
    event = result.records["event"][0]
    assert event["metric_id"] and event["profile_id"] and event["datetime"]
    assert "attributes" not in event and "relationships" not in event
    for message in result.records["flow_messages"]:
        assert message["flow_id"] and message["flow_action_id"]
    flow_ids = {f["id"] for f in result.records["flow"]}
    assert all(action["flow_id"] in flow_ids for action in result.records["flow_action"])
    campaign_ids = {c["id"] for c in result.records["campaign"]}
    assert all(m["campaign_id"] in campaign_ids for m in result.records["campaign_messages"])
    assert {c["archived"] for c in result.records["campaign"]} == {True, False}
    assert {f["archived"] for f in result.records["flow"]} == {True, False}
    profile = result.records["profile"][0]
    assert "subscriptions" in profile and profile["subscriptions"] is not None
    assert profile.get("predictive_analytics") is None


def test_final_state_has_bookmarks(full_sync: tuple[Any, list[Any]]) -> None:
    result, _ = full_sync
    bookmarks = result.state["bookmarks"]
    assert bookmarks["event"]["replication_key"] == "datetime"
    assert bookmarks["profile"]["replication_key_value"]
    lists = bookmarks["profile_list"]["partitions"]
    assert len(lists) == len(result.records["list"])
