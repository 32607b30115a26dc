"""A full sync against an account whose answers vary as real Klaviyo's do (klaviyo_emulator/variance.py).

Attributes the spec leaves optional are missing, nullable ones null (replication keys included), fields and enum
values the spec does not list appear, relationships are missing, null or partial, `attributes` is null or
empty. The sync must end normally, every record valid and total, every identity there, and no STATE may put a
bookmark past a record the run had not emitted yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from klaviyo_core.timestamps import parse_utc
from klaviyo_emulator import Emulator, EmulatorConfig
from tests.conftest import config_for
from tests.harness import ID_STREAMS, SyncResult, membership_rows, run_tap, select_only

RATE = 0.3


@pytest.fixture(scope="module")
def varied() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0, seed=7, shape_variance=RATE)) as emu:
        yield emu


@pytest.fixture(scope="module")
def varied_sync(varied: Emulator) -> SyncResult:
    config = config_for(varied, report_history_days=1)
    every = {entry["tap_stream_id"] for entry in select_only(config, set())["streams"]}
    return run_tap(config, catalog=select_only(config, every))


def test_every_stream_syncs(varied_sync: SyncResult) -> None:
    assert "Traceback" not in varied_sync.stderr
    assert varied_sync.records["event"], "no events"
    streams = {m["stream"] for m in varied_sync.messages if m["type"] == "SCHEMA"}
    assert streams == set(varied_sync.schemas)
    assert len(streams) >= 40


def test_the_account_really_varied(varied_sync: SyncResult) -> None:
    """The variance reached the tap: replication keys missing, unlisted fields named, relationships gone."""
    events = varied_sync.records["event"]
    assert any(e["datetime"] is None for e in events)
    assert any(e["metric_id"] is None for e in events)
    assert any(e["datetime"] is not None for e in events)
    assert "which the stream's schema does not declare" in varied_sync.stderr
    assert any(
        isinstance(c.get("status"), str) and c["status"].endswith("_newer_than_spec")
        for c in varied_sync.records["campaign"]
    ) or any(
        isinstance(f.get("status"), str) and f["status"].endswith("_newer_than_spec")
        for f in varied_sync.records["flow"]
    )


def test_records_are_valid_and_total(varied_sync: SyncResult) -> None:
    checked = 0
    for stream, records in varied_sync.records.items():
        schema = varied_sync.schemas[stream]
        validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
        declared = set(schema["properties"])
        for record in records:
            errors = [e.message for e in validator.iter_errors(record)]
            assert not errors, f"{stream} {record.get('id')}: {errors[:3]}"
            assert declared <= set(record), f"{stream}: missing columns {sorted(declared - set(record))[:5]}"
            checked += 1
    assert checked > 3000


@pytest.mark.parametrize(("stream", "resource"), sorted(ID_STREAMS.items()))
def test_identities_as_without_variance(varied_sync: SyncResult, varied: Emulator, stream: str, resource: str) -> None:
    emitted = [record["id"] for record in varied_sync.records[stream]]
    assert set(emitted) == varied.account.expected_ids(resource)
    assert len(emitted) == len(set(emitted)), f"{stream}: duplicates"


def test_memberships_as_without_variance(varied_sync: SyncResult, varied: Emulator) -> None:
    for stream, key, resource in (("profile_list", "list_id", "list"), ("profile_segment", "segment_id", "segment")):
        rows = {(r[key], r["profile_id"]) for r in varied_sync.records[stream]}
        assert rows == membership_rows(varied.account, resource), stream


def test_records_without_their_key_are_counted_once(varied_sync: SyncResult) -> None:
    missing = sum(1 for e in varied_sync.records["event"] if e["datetime"] is None)
    lines = [line for line in varied_sync.stderr.splitlines() if "records came without datetime" in line]
    assert len(lines) == 1, lines
    assert f"event: {missing} records came without datetime" in lines[0]
    assert "New replication value is null" not in varied_sync.stderr


def test_no_bookmark_passes_a_record_not_yet_emitted(varied_sync: SyncResult) -> None:
    """At every STATE, every later record of that stream (and partition) is at or after its bookmark."""
    later: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for index, message in enumerate(varied_sync.messages):
        if message["type"] == "RECORD":
            later.setdefault(message["stream"], []).append((index, message["record"]))
    checked = 0
    for index, message in enumerate(varied_sync.messages):
        if message["type"] != "STATE":
            continue
        for stream, state in (message["value"].get("bookmarks") or {}).items():
            for partition in [state, *(state.get("partitions") or [])]:
                bookmark = parse_utc(partition.get("replication_key_value"))
                key = partition.get("replication_key")
                if bookmark is None or not key:
                    continue
                context = partition.get("context") or {}
                for position, record in later.get(stream, []):
                    if position < index or any(record.get(k) != v for k, v in context.items()):
                        continue
                    value = parse_utc(record.get(key))
                    assert value is None or value >= bookmark, (stream, context, record.get(key), bookmark)
                    checked += 1
    assert checked > 0
