"""`event_attribution`: the attributions Klaviyo includes with the event pages, asked for only when selected.

Each run goes through HTTP against the emulator, which credits a share of its conversion events (Placed Order,
Fulfilled Order) to earlier email/SMS/push events of the same profile and to their campaign or flow message.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import requests

from klaviyo_emulator import DEMO_API_KEY, Emulator
from klaviyo_emulator.schema_check import response_errors
from tap_klaviyo.reading import windows
from tests.conftest import config_for
from tests.harness import SyncResult, run_tap, select_only

#: Column of the record <- relationship of Klaviyo's attribution resource.
LINKS = {
    "event_id": "event",
    "attributed_event_id": "attributed-event",
    "campaign_id": "campaign",
    "campaign_message_id": "campaign-message",
    "flow_id": "flow",
    "flow_message_id": "flow-message",
    "flow_message_variation_id": "flow-message-variation",
}


def expected_rows(emulator: Emulator, event_ids: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """The emulator's attributions as the records the stream must emit (of these events only, if given)."""
    rows = {}
    for attribution_id, links in emulator.account.expected_attributions().items():
        if event_ids is None or links["event"] in event_ids:
            rows[attribution_id] = {"id": attribution_id, **{c: links.get(rel) for c, rel in LINKS.items()}}
    return rows


def sync(emulator: Emulator, streams: set[str], **settings: Any) -> tuple[SyncResult, list[Any]]:
    emulator.clear_log()
    config = config_for(emulator, **settings)
    result = run_tap(config, catalog=select_only(config, streams))
    return result, list(emulator.requests)


def event_queries(log: list[Any]) -> list[dict[str, str]]:
    return [dict(entry.query) for entry in log if entry.template == "/api/events"]


def without_include(queries: list[dict[str, str]]) -> Counter[str]:
    """The event requests of a run, `include` aside (the same pages, whatever is included)."""
    return Counter(repr(sorted((k, v) for k, v in q.items() if k != "include")) for q in queries)


@pytest.fixture(scope="module")
def runs(emulator: Emulator) -> dict[str, tuple[SyncResult, list[Any]]]:
    return {
        "events": sync(emulator, {"event"}, max_concurrency=1),
        "both": sync(emulator, {"event", "event_attribution"}, max_concurrency=1),
    }


def test_the_emulator_attributes_a_share_of_conversions(emulator: Emulator) -> None:
    expected = expected_rows(emulator)
    assert len(expected) >= 30
    assert any(r["campaign_id"] for r in expected.values()) and any(r["flow_id"] for r in expected.values())
    assert len({r["event_id"] for r in expected.values()}) < len(expected), "some conversions have two"
    assert len({r["event_id"] for r in expected.values()}) < emulator.account.event_count() // 10


def test_sync_emits_exactly_the_emulators_attributions(
    runs: dict[str, tuple[SyncResult, list[Any]]], emulator: Emulator
) -> None:
    result, _ = runs["both"]
    rows = result.records["event_attribution"]
    assert len(rows) == len({r["id"] for r in rows}), "an attribution emitted twice"
    assert {r["id"]: r for r in rows} == expected_rows(emulator)
    assert result.key_properties["event_attribution"] == ["id"]
    assert list(result.schemas["event_attribution"]["properties"]) == ["id", *LINKS]
    events = {e["id"] for e in result.records["event"]}
    assert {r["event_id"] for r in rows} <= events
    assert len(result.records["event"]) == len(runs["events"][0].records["event"])
    # The child is synced only for events with attributions (each child sync repeats its SCHEMA message).
    schemas = [m for m in result.messages if m["type"] == "SCHEMA" and m["stream"] == "event_attribution"]
    assert 1 <= len(schemas) <= len({r["event_id"] for r in rows})


def test_attributions_are_asked_for_only_when_selected(runs: dict[str, tuple[SyncResult, list[Any]]]) -> None:
    plain, with_child = event_queries(runs["events"][1]), event_queries(runs["both"][1])
    assert plain and with_child
    assert all("attributions" not in q.get("include", "").split(",") for q in plain)
    assert all("attributions" in q["include"].split(",") for q in with_child)
    assert "event_attribution" not in runs["events"][0].records


def test_no_request_of_its_own(runs: dict[str, tuple[SyncResult, list[Any]]]) -> None:
    plain, with_child = runs["events"][1], runs["both"][1]
    assert {e.template for e in with_child} == {e.template for e in plain} == {"/api/events"}
    assert without_include(event_queries(with_child)) == without_include(event_queries(plain))


def test_the_child_alone_reads_the_event_pages(emulator: Emulator) -> None:
    result, log = sync(emulator, {"event_attribution"}, max_concurrency=1)
    assert "event" not in result.records
    assert {r["id"]: r for r in result.records["event_attribution"]} == expected_rows(emulator)
    assert all("attributions" in q["include"].split(",") for q in event_queries(log))


def test_attributions_follow_the_events_bookmark(emulator: Emulator) -> None:
    """From a bookmark, exactly the attributions of the events read again; no bookmark of their own."""
    ordered = sorted(emulator.account.expected_attributions().values(), key=lambda links: links["event"])
    middle = emulator.account.get("event", ordered[len(ordered) // 2]["event"])
    assert middle is not None
    bookmark = str(middle.attrs["datetime"])
    state = {"bookmarks": {"event": {"replication_key": "datetime", "replication_key_value": bookmark}}}
    config = config_for(emulator, max_concurrency=1, event_lookback_days=0)
    result = run_tap(config, state=state, catalog=select_only(config, {"event", "event_attribution"}))
    events = {e["id"] for e in result.records["event"]}
    assert events and all(e["datetime"] >= bookmark for e in result.records["event"])
    rows = {r["id"]: r for r in result.records["event_attribution"]}
    assert rows == expected_rows(emulator, events)
    assert 0 < len(rows) < len(expected_rows(emulator))
    assert not result.state["bookmarks"].get("event_attribution")
    assert result.state["bookmarks"]["event"]["replication_key_value"] > bookmark


def test_windows_in_parallel_emit_what_one_cursor_does(
    runs: dict[str, tuple[SyncResult, list[Any]]], emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows of a tenth of a page: the tiny account's range is cut into many, read by 8 workers.
    monkeypatch.setattr(windows, "PAGES_PER_WINDOW", 0.1)
    sequential, sequential_log = runs["both"]
    concurrent, concurrent_log = sync(emulator, {"event", "event_attribution"}, max_concurrency=8)
    assert len(event_queries(concurrent_log)) > len(event_queries(sequential_log)) + 5, "no windows were cut"
    assert all("attributions" in q["include"].split(",") for q in event_queries(concurrent_log))
    for stream in ("event", "event_attribution"):
        assert sorted(concurrent.records[stream], key=lambda r: r["id"]) == sorted(
            sequential.records[stream], key=lambda r: r["id"]
        ), stream
    assert concurrent.records["event_attribution"] == sequential.records["event_attribution"], "order kept"


ALL_EVENT_FIELDS = {"fields[event]": "timestamp,event_properties,datetime,uuid"}


@pytest.mark.parametrize("fields", [{}, ALL_EVENT_FIELDS], ids=["fast path", "generic renderer"])
def test_the_emulator_serves_attributions_as_the_spec_says(emulator: Emulator, fields: dict[str, str]) -> None:
    """Both of the emulator's event renderers link each event to its attributions and include them."""
    headers = {"Authorization": f"Klaviyo-API-Key {DEMO_API_KEY}", "revision": "2026-07-15"}
    params = {"page[size]": "1000", "include": "attributions,metric", **fields}
    expected = emulator.account.expected_attributions()
    seen: dict[str, dict[str, str]] = {}
    url: str | None = f"{emulator.base_url}/api/events"
    while url:
        response = requests.get(url, params=params if "?" not in url else None, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        assert not response_errors("GET", "/api/events", body)
        included = {(r["type"], r["id"]): r for r in body["included"]}
        for event in body["data"]:
            refs = event["relationships"]["attributions"]["data"]
            for ref in refs:
                relationships = included[(ref["type"], ref["id"])]["relationships"]
                seen[ref["id"]] = {k: v["data"]["id"] for k, v in relationships.items() if v.get("data")}
                assert seen[ref["id"]]["event"] == event["id"]
        url = body["links"].get("next")
    assert seen == expected
    # The attributed events are real, earlier message events of the same profile.
    for links in list(expected.values())[:10]:
        conversion = emulator.account.get("event", links["event"])
        touch = emulator.account.get("event", links["attributed-event"])
        assert conversion is not None and touch is not None
        assert touch.rels["profile"] == conversion.rels["profile"]
        assert touch.attrs["datetime"] < conversion.attrs["datetime"]
        assert touch.attrs["event_properties"]["$message"] in (links.get("campaign-message"), links.get("flow-message"))


def test_the_emulator_renders_event_pages_alike_on_both_paths(emulator: Emulator) -> None:
    """The hand-built event JSON (what a sync gets: `fields[metric]` keeps it) equals the generic renderer's."""
    headers = {"Authorization": f"Klaviyo-API-Key {DEMO_API_KEY}", "revision": "2026-07-15"}
    params = {"page[size]": "200", "include": "attributions,metric", "fields[metric]": "name", "sort": "datetime"}
    fast = requests.get(f"{emulator.base_url}/api/events", params=params, headers=headers, timeout=10)
    generic = requests.get(
        f"{emulator.base_url}/api/events", params={**params, **ALL_EVENT_FIELDS}, headers=headers, timeout=10
    )
    assert fast.status_code == generic.status_code == 200
    fast_body, generic_body = fast.json(), generic.json()
    assert len(fast_body["data"]) == 200
    assert fast_body["data"] == generic_body["data"]

    def by_key(included: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
        return {(r["type"], r["id"]): r for r in included}

    assert by_key(fast_body["included"]) == by_key(generic_body["included"])  # JSON:API leaves the order open
