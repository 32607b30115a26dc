"""Optional behaviour users ask for: event filters, inlined profile data, field selection, custom streams."""

from __future__ import annotations

from typing import Any

from klaviyo_emulator import Emulator
from tests.conftest import config_for
from tests.harness import run_tap, select_only


def test_events_of_chosen_metrics_use_klaviyos_filter(emulator: Emulator) -> None:
    placed = emulator.account.metric_id("Placed Order")
    config = config_for(emulator, event_metric_ids=[placed], event_profile_fields=["email", "first_name"])
    emulator.clear_log()
    result = run_tap(config, catalog=select_only(config, {"event"}))
    events = result.records["event"]
    assert events and all(e["metric_id"] == placed for e in events)
    assert all(e["metric_name"] == "Placed Order" for e in events)
    assert all(set(e["profile"]) <= {"email", "first_name"} and "email" in e["profile"] for e in events)
    queries = [
        dict(e.query) for e in emulator.requests if e.template == "/api/events" and "page[cursor]" not in dict(e.query)
    ]
    assert queries and all(f'equals(metric_id,"{placed}")' in q["filter"] for q in queries)
    assert all(q["fields[profile]"] == "email,first_name" for q in queries)
    partitions = result.state["bookmarks"]["event"]["partitions"]
    assert [p["context"] for p in partitions] == [{"metric_id": placed}]


def test_every_event_names_its_metric(full_sync: tuple[Any, list[Any]], emulator: Emulator) -> None:
    result, _ = full_sync
    names = {r["id"]: r["name"] for r in result.records["metric"]}
    assert all(e["metric_name"] == names[e["metric_id"]] for e in result.records["event"])


def test_deselected_fields_are_not_requested(emulator: Emulator) -> None:
    config = config_for(emulator)
    catalog = select_only(config, {"profile"})
    entry = next(s for s in catalog["streams"] if s["tap_stream_id"] == "profile")
    for item in entry["metadata"]:
        if item["breadcrumb"][:1] == ["properties"] and item["breadcrumb"][1] not in ("id", "email", "updated"):
            item["metadata"]["selected"] = False
    emulator.clear_log()
    result = run_tap(config, catalog=catalog)
    assert {r["id"] for r in result.records["profile"]} == emulator.account.expected_ids("profile")
    assert all(set(r) <= {"id", "email", "updated"} for r in result.records["profile"])
    sent = {dict(e.query).get("fields[profile]") for e in emulator.requests if e.template == "/api/profiles"}
    assert sent - {None} == {"id,email,updated"}


def test_custom_stream_from_any_collection(emulator: Emulator) -> None:
    config = config_for(
        emulator,
        custom_streams=[
            {"name": "starred_segments", "path": "/api/segments", "params": {"filter": "equals(is_starred,true)"}},
            {"name": "recent_lists", "path": "/api/lists", "replication_key": "updated"},
        ],
    )
    result = run_tap(config, catalog=select_only(config, {"starred_segments", "recent_lists"}))
    starred = result.records["starred_segments"]
    assert starred and all(r["is_starred"] is True for r in starred)
    assert {r["id"] for r in result.records["recent_lists"]} == emulator.account.expected_ids("list")
    assert result.state["bookmarks"]["recent_lists"]["replication_key_value"]
    assert "is_starred" in result.schemas["starred_segments"]["properties"]


def test_deselected_nested_fields_are_dropped_from_every_record(emulator: Emulator) -> None:
    """Nested deselection is the SDK's per-record walk through the stream's selection mask; the tap's mask
    remembers answers for keys its metadata does not list (inside `properties`), which must not change any."""
    config = config_for(emulator)
    plain = run_tap(config, catalog=select_only(config, {"profile"})).records["profile"]
    catalog = select_only(config, {"profile"})
    entry = next(s for s in catalog["streams"] if s["tap_stream_id"] == "profile")
    dropped = [["subscriptions", "sms"], ["subscriptions", "email", "marketing"], ["location", "city"]]
    for item in entry["metadata"]:
        path = item["breadcrumb"][1::2]
        if item["breadcrumb"][::2] == ["properties"] * len(path) and path in dropped:
            item["metadata"]["selected"] = False
    result = run_tap(config, catalog=catalog)
    records = result.records["profile"]
    assert [r["id"] for r in records] == [r["id"] for r in plain]
    assert any(r.get("properties") for r in records)  # free-form keys, walked through unlisted breadcrumbs
    for before, after in zip(plain, records, strict=True):
        expected = {**before, "subscriptions": dict(before["subscriptions"]), "location": dict(before["location"])}
        expected["subscriptions"].pop("sms", None)
        expected["subscriptions"]["email"] = {
            k: v for k, v in expected["subscriptions"]["email"].items() if k != "marketing"
        }
        expected["location"].pop("city", None)
        assert after == expected
