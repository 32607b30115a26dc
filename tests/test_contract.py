"""Every request of a full sync, checked against the vendored OpenAPI spec."""

from __future__ import annotations

from typing import Any

from klaviyo_core import spec
from klaviyo_emulator.contract import validate_request


def test_every_request_is_allowed_by_the_spec(full_sync: tuple[Any, list[Any]]) -> None:
    _, log = full_sync
    assert len(log) > 20
    problems = []
    for entry in log:
        errors = validate_request(entry.method, entry.path, entry.query, entry.headers, entry.body)
        if errors or entry.status != 200:
            problems.append((entry.method, entry.path, entry.raw_query, entry.status, errors))
    assert not problems, problems[:5]


def test_headers_and_page_sizes(full_sync: tuple[Any, list[Any]]) -> None:
    _, log = full_sync
    for entry in log:
        headers = {k.lower(): v for k, v in entry.headers.items()}
        assert headers["revision"] == "2026-07-15"
        assert headers["accept"] == "application/vnd.api+json"
        assert headers["authorization"].startswith("Klaviyo-API-Key")
        params = dict(entry.query)
        rules = spec.endpoint(entry.template, entry.method.lower())
        if rules.max_page_size and "page[cursor]" not in params:
            assert params.get("page[size]") == str(rules.max_page_size), (entry.path, params)
        names = [name for name, _ in entry.query]
        assert len(names) == len(set(names)), f"duplicated parameter in {entry.raw_query}"


def test_events_are_read_at_the_largest_page(full_sync: tuple[Any, list[Any]], emulator: Any) -> None:
    _, log = full_sync
    pages = [e for e in log if e.template == "/api/events"]
    expected_pages = -(-emulator.account.event_count() // 1000)
    # Time windows fetched in parallel may each end on a part page; never more than one extra a window.
    assert expected_pages <= len(pages) <= 2 * expected_pages + 1
    assert all(dict(e.query).get("page[size]") == "1000" for e in pages if "page[cursor]" not in dict(e.query))
