"""The lazy account (profiles and memberships computed from their index, the xlarge benchmark's) serves the
same pages as the generic collection code over the same records materialised: two emulators over one
account, one serving by position, the other from every record listed, filtered and sorted per request."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import requests

from klaviyo_emulator import DEMO_API_KEY, Emulator, EmulatorConfig
from klaviyo_emulator.data import SIZES, AccountData, SizeSpec

SIZES.setdefault("lazy-small", SizeSpec(900, 3_000, 5, 3, 6, 15, 12, 0, 1, lazy=True))
HEADERS = {"Authorization": f"Klaviyo-API-Key {DEMO_API_KEY}", "revision": "2026-07-15"}


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Emulator, Emulator]]:
    account = AccountData("lazy-small", 3)
    with (
        Emulator(EmulatorConfig(size="lazy-small", rate_limit_scale=0.0), account=account) as lazy,
        Emulator(EmulatorConfig(size="lazy-small", rate_limit_scale=0.0), account=account) as materialised,
    ):
        materialised.api.lazy = False
        yield lazy, materialised


def walk(emu: Emulator, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every page of a collection, following links.next (the base URL made relative to compare two servers)."""
    return [json.loads(body) for body in walk_text(emu, path, params)]


def walk_text(emu: Emulator, path: str, params: dict[str, str]) -> list[str]:
    """Every page's body as sent (the base URL made relative)."""
    pages = []
    url: str | None = emu.base_url + path
    query: dict[str, str] | None = params
    while url:
        response = requests.get(url, params=query, headers=HEADERS, timeout=30)
        assert response.status_code == 200, response.text[:500]
        pages.append(response.text.replace(emu.base_url, "BASE"))
        url, query = response.json()["links"].get("next"), None
    return pages


PROFILE_QUERIES = [
    {"sort": "updated", "page[size]": "100", "additional-fields[profile]": "subscriptions"},
    {"sort": "-updated", "page[size]": "37"},
    {"sort": "updated", "filter": "greater-than(updated,2024-06-01T00:00:00Z)", "page[size]": "100"},
    {
        "sort": "updated",
        "filter": "and(greater-than(updated,2024-01-01T00:00:00Z),less-than(updated,2025-01-01T00:00:00Z))",
    },
    {"sort": "updated", "filter": 'equals(email,"liam.garcia.1@example.com")'},  # not a range: tested per record
    {"page[size]": "100"},  # id order: not the lazy order, served from the records
]


@pytest.mark.parametrize("params", PROFILE_QUERIES, ids=lambda p: p.get("filter", p.get("sort", "id")))
def test_lazy_profiles_serve_the_same_pages(pair: tuple[Emulator, Emulator], params: dict[str, str]) -> None:
    lazy, materialised = pair
    expected = walk_text(materialised, "/api/profiles", params)
    assert walk_text(lazy, "/api/profiles", params) == expected  # byte for byte
    assert sum(len(json.loads(p)["data"]) for p in expected) > 0


EVENT_QUERIES = [
    {"sort": "datetime", "page[size]": "100", "include": "metric", "fields[metric]": "name"},  # the tap's
    {"sort": "-datetime", "page[size]": "250", "include": "metric,profile", "fields[profile]": "email"},
    {
        "sort": "datetime",
        "filter": "and(greater-or-equal(datetime,2024-03-01T00:00:00Z),less-than(datetime,2025-01-01T00:00:00Z))",
        "include": "attributions",
    },
    {"sort": "datetime", "filter": "greater-than(datetime,2026-10-01T00:00:00Z)"},  # the future-dated ones
]


@pytest.mark.parametrize("params", EVENT_QUERIES, ids=lambda p: f"{p['sort']}-{p.get('include', p.get('filter'))}")
def test_events_from_their_pieces_are_the_generic_renderers(
    pair: tuple[Emulator, Emulator], params: dict[str, str]
) -> None:
    """Event pages built as text from computed pieces (the hot path of big syncs) equal, byte for byte, the
    same events made records and rendered by the generic code."""
    lazy, materialised = pair
    expected = [in_order(page) for page in walk_text(materialised, "/api/events", params)]
    assert [in_order(page) for page in walk_text(lazy, "/api/events", params)] == expected
    assert sum(len(page["data"]) for page in expected) > 0


def test_a_precomputed_account_serves_the_same_bytes() -> None:
    """The benchmark's accounts work out their profile ids and property tails before serving
    (`AccountData.precompute`): every events and profiles page is the same text as one worked out per page (two
    builds of one account at one time: its future-dated events are dated from it)."""
    built_at = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
    per_page, precomputed = AccountData("lazy-small", 3, now=built_at), AccountData("lazy-small", 3, now=built_at)
    precomputed.precompute()
    assert per_page.events.known_profile_ids is not None and None in per_page.events.known_profile_ids
    assert precomputed.events.known_profile_ids is not None and None not in precomputed.events.known_profile_ids
    queries = (
        ("/api/events", {"sort": "datetime", "page[size]": "200", "include": "metric"}),
        ("/api/events", {"sort": "-datetime", "page[size]": "1000"}),
        ("/api/profiles", PROFILE_QUERIES[0]),
    )
    with (
        Emulator(EmulatorConfig(size="lazy-small", rate_limit_scale=0.0), account=per_page) as first,
        Emulator(EmulatorConfig(size="lazy-small", rate_limit_scale=0.0), account=precomputed) as second,
    ):
        for path, params in queries:
            expected = walk_text(first, path, params)
            assert len(expected) > 1
            assert walk_text(second, path, params) == expected


def in_order(body: str) -> dict[str, Any]:
    """A page's members (data, included, links: the two renderers write them in different orders), each as
    pairs in the order sent, so a resource's attributes compare in order too."""
    pairs: list[tuple[str, Any]] = json.loads(body, object_pairs_hook=list)
    return dict(pairs)


def test_lazy_memberships_serve_the_same_pages(pair: tuple[Emulator, Emulator]) -> None:
    lazy, materialised = pair
    account = lazy.account
    groups = sorted(account.expected_ids("list"))
    sizes = [len(account.list_members(g)) for g in groups]
    assert max(sizes) > 100 and min(sizes) == 0  # a group of several pages, and an empty one
    for list_id in groups:
        for params in (
            {"fields[profile]": "joined_group_at", "sort": "joined_group_at", "page[size]": "100"},
            {"sort": "joined_group_at", "filter": "greater-than(joined_group_at,2024-09-01T00:00:00Z)"},
        ):
            path = f"/api/lists/{list_id}/profiles"
            assert walk_text(lazy, path, params) == walk_text(materialised, path, params), (list_id, params)


def test_lazy_ids_events_and_lookups_agree(pair: tuple[Emulator, Emulator]) -> None:
    lazy, _ = pair
    account = lazy.account
    profiles = account.expected_ids("profile")
    assert len(profiles) == SIZES["lazy-small"].profiles
    events = walk(lazy, "/api/events", {"sort": "datetime"})
    owners = {e["relationships"]["profile"]["data"]["id"] for page in events for e in page["data"]}
    assert owners <= profiles  # every event's profile exists
    some = sorted(owners)[0]
    response = requests.get(f"{lazy.base_url}/api/profiles/{some}", headers=HEADERS, timeout=30)
    assert response.status_code == 200 and response.json()["data"]["id"] == some
    forged = some[:10] + "Z" * 16  # the form of an id, naming no profile
    assert requests.get(f"{lazy.base_url}/api/profiles/{forged}", headers=HEADERS, timeout=30).status_code == 404


def test_a_million_profile_account_holds_no_record_per_profile() -> None:
    SIZES.setdefault("lazy-million", SizeSpec(1_000_000, 10_000_000, 20, 2, 6, 15, 12, 0, 1, lazy=True))
    tracemalloc.start()
    account = AccountData("lazy-million", 1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 * 1024**2, f"{peak / 1024**2:.0f} MB to build"  # materialised: gigabytes
    assert account.event_count() >= 10_000_000
    biggest = max(account.expected_ids("list"), key=lambda g: len(account.members["list"][g]))
    assert len(account.members["list"][biggest]) == 200_000
    # Pages are served by position: one costs what its 100 records do, not what the account's million would.
    with Emulator(EmulatorConfig(size="lazy-million", rate_limit_scale=0.0), account=account) as emu:
        tracemalloc.start()
        for path, params in (
            (
                "/api/profiles",
                {"sort": "updated", "filter": "greater-than(updated,2025-01-01T00:00:00Z)", "page[size]": "100"},
            ),
            (f"/api/lists/{biggest}/profiles", {"sort": "joined_group_at", "page[size]": "100"}),
        ):
            response = requests.get(emu.base_url + path, params=params, headers=HEADERS, timeout=60)
            assert response.status_code == 200 and len(response.json()["data"]) == 100
            assert response.json()["links"]["next"]
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 32 * 1024**2, f"{peak / 1024**2:.0f} MB to serve two pages"
