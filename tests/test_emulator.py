"""Tests of the offline Klaviyo API emulator (klaviyo_emulator): shapes, rules, limits, faults, data."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `tests` has no __init__.py: make `klaviyo_emulator` importable
    sys.path.insert(0, str(REPO))

from klaviyo_emulator import (  # noqa: E402
    DEMO_API_KEY,
    AccountData,
    Emulator,
    EmulatorConfig,
    ForcedResponse,
    match_operation,
    validate_request,
)
from klaviyo_emulator.filters import FilterError, parse_filter  # noqa: E402
from klaviyo_emulator.ratelimit import RateLimiter  # noqa: E402
from klaviyo_emulator.schema_check import response_errors  # noqa: E402
from klaviyo_emulator.spec import RateLimit, get_spec, parse_allowed_text  # noqa: E402

REVISION = "2026-07-15"
HEADERS = {"Authorization": f"Klaviyo-API-Key {DEMO_API_KEY}", "revision": REVISION}
# Vendored (tests/fixtures/spec/README.md says whence): the test runs on every machine, CI's clean clone included.
SUMMARY = REPO / "tests" / "fixtures" / "spec" / "get-endpoints-summary-2026-07-15.json"


@pytest.fixture(scope="module")
def emu():
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0, seed=1)) as server:
        yield server


@pytest.fixture
def session():
    with requests.Session() as s:
        s.headers.update(HEADERS)
        yield s


def get(emu, path, params=None, headers=None, session=None):
    sender = session or requests
    return sender.get(emu.base_url + path, params=params, headers=headers or HEADERS, timeout=10)


def walk(emu, path, params=None):
    """All ids of a paginated collection, following links.next; also the number of pages."""
    ids: list[str] = []
    pages = 0
    with requests.Session() as s:
        s.headers.update(HEADERS)
        r = s.get(emu.base_url + path, params=params, timeout=10)
        while True:
            assert r.status_code == 200, r.text
            body = r.json()
            ids += [d["id"] for d in body["data"]]
            pages += 1
            nxt = body["links"].get("next")
            if not nxt:
                return ids, pages
            r = s.get(nxt, timeout=10)


def error(r):
    return r.json()["errors"][0]


# ---- spec reading --------------------------------------------------------------------------------


def test_spec_rules_match_shared_summary():
    spec = get_spec()
    summary = json.loads(SUMMARY.read_text())["operations"]
    checked = 0
    for row in summary:
        op = spec.operation(row["method"], row["path"])
        assert list(op.scopes) == row["scopes"], row["path"]
        if row["page_size"]:
            assert list(op.page_size or ()) == row["page_size"], row["path"]
        if row["sort"]:
            assert set(op.sort_values or ()) >= {s for s in row["sort"]}, row["path"]
        if row.get("filter"):
            assert op.filters is not None
            from_text = parse_allowed_text(op.query_params["filter"]["description"])
            for item in row["filter"].split("; "):
                field, ops = item.split(": ")
                assert set(ops.split("/")) == op.filters[field].operators, (row["path"], field)
                assert set(ops.split("/")) == from_text[field].operators, (row["path"], field)
        assert bool(row.get("filter_required")) == op.filter_required
        rate = row["rate"]
        assert op.rate.burst == int(rate["burst"].split("/")[0])
        assert op.rate.steady == int(rate["steady"].split("/")[0])
        checked += 1
    assert checked > 200


def test_match_operation_and_templates():
    assert (match_operation("GET", "/api/lists/abc/profiles") or ("",))[0] == "/api/lists/{id}/profiles"
    assert (match_operation("GET", "/api/profiles/") or ("",))[0] == "/api/profiles"
    assert match_operation("GET", "/api/nope") is None
    assert match_operation("DELETE", "/api/accounts") is None


# ---- shapes --------------------------------------------------------------------------------------


def _sample_path(emu, template: str) -> str | None:
    spec = get_spec()
    data = emu.account
    parts = template.split("/")
    if len(parts) <= 3:
        return template
    rtype = next((t for t, p in spec.type_paths.items() if p == "/".join(parts[:3])), None)
    if rtype == "event":
        return template.replace("{id}", data.events.event_id(7))
    records = data.records(rtype) if rtype else []
    if not records:
        return None
    chosen = records[0].id
    if len(parts) >= 5:
        for rec in records:
            if data.related_ids(rec, parts[-1]):
                chosen = rec.id
                break
    return template.replace("{id}", chosen).replace("{job_id}", chosen)


def test_every_get_endpoint_answers_in_the_spec_shape(emu, session):
    spec = get_spec()
    checked = 0
    for op in spec.operations:
        if op.method != "GET" or op.template.startswith("/client"):
            continue
        path = _sample_path(emu, op.template)
        if path is None:
            continue
        params = {}
        if op.template == "/api/campaigns":
            params["filter"] = "equals(messages.channel,'email')"
        if op.template == "/api/coupon-codes":
            params["filter"] = "equals(coupon.id,'WELCOME10')"
        r = session.get(emu.base_url + path, params=params)
        if op.template == "/api/profiles/{id}/conversation":
            assert r.status_code == 404
            continue
        assert r.status_code == 200, (op.template, r.text[:300])
        assert r.headers["Content-Type"] == "application/vnd.api+json"
        errors = response_errors("GET", op.template, r.json())
        assert not errors, (op.template, errors)
        checked += 1
    assert checked >= 140


def test_included_resources_and_relationship_data(emu, session):
    r = session.get(emu.base_url + "/api/events", params={"include": "metric,profile", "page[size]": "50"})
    body = r.json()
    assert not response_errors("GET", "/api/events", body)
    types = {i["type"] for i in body["included"]}
    assert types == {"metric", "profile"}
    event = body["data"][0]
    assert event["relationships"]["metric"]["data"]["type"] == "metric"
    assert "data" not in event["relationships"]["attributions"]
    included_ids = {(i["type"], i["id"]) for i in body["included"]}
    for e in body["data"]:
        assert ("profile", e["relationships"]["profile"]["data"]["id"]) in included_ids
    r = session.get(emu.base_url + "/api/flows", params={"include": "flow-actions"})
    flow = r.json()["data"][0]
    assert isinstance(flow["relationships"]["flow-actions"]["data"], list)
    assert {i["type"] for i in r.json()["included"]} == {"flow-action"}
    r = session.get(emu.base_url + "/api/flows")
    assert "data" not in r.json()["data"][0]["relationships"]["flow-actions"]


def test_additional_fields_and_sparse_fieldsets(emu, session):
    plain = session.get(emu.base_url + "/api/profiles", params={"page[size]": "5"}).json()["data"][0]
    assert "subscriptions" not in plain["attributes"] and "predictive_analytics" not in plain["attributes"]
    extra = session.get(
        emu.base_url + "/api/profiles",
        params={"page[size]": "5", "additional-fields[profile]": "subscriptions,predictive_analytics"},
    ).json()["data"][0]
    assert "subscriptions" in extra["attributes"] and "predictive_analytics" in extra["attributes"]
    sparse = session.get(
        emu.base_url + "/api/profiles", params={"fields[profile]": "email,location.city", "page[size]": "3"}
    ).json()["data"][0]
    assert set(sparse["attributes"]) == {"email", "location"}
    assert set(sparse["attributes"]["location"]) == {"city"}


# ---- pagination ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "rtype"),
    [
        ("/api/profiles", {"page[size]": "100", "sort": "updated"}, "profile"),
        ("/api/profiles", {"page[size]": "7", "sort": "-updated"}, "profile"),
        ("/api/lists", {}, "list"),
        ("/api/segments", {"sort": "-updated"}, "segment"),
        ("/api/templates", {"sort": "updated"}, "template"),
        ("/api/metrics", {}, "metric"),
        ("/api/events", {"page[size]": "1000", "sort": "datetime"}, "event"),
        ("/api/events", {"page[size]": "700", "sort": "-datetime"}, "event"),
        ("/api/tags", {"page[size]": "3"}, "tag"),
        ("/api/catalog-items", {"page[size]": "4"}, "catalog-item"),
    ],
)
def test_pagination_walks_everything_once(emu, path, params, rtype):
    ids, pages = walk(emu, path, params)
    assert len(ids) == len(set(ids))
    assert set(ids) == emu.account.expected_ids(rtype)
    if rtype in ("list", "segment", "template", "event"):
        assert pages > 1


def test_sort_really_sorts_with_ties_by_id(emu, session):
    rows = []
    r = session.get(emu.base_url + "/api/profiles", params={"page[size]": "100", "sort": "updated"})
    while True:
        rows += r.json()["data"]
        nxt = r.json()["links"]["next"]
        if not nxt:
            break
        r = session.get(nxt)
    keys = [(datetime.fromisoformat(p["attributes"]["updated"]), p["id"]) for p in rows]
    assert keys == sorted(keys)
    # without sort, campaigns are not ordered by updated_at
    camps = session.get(emu.base_url + "/api/campaigns", params={"filter": "equals(messages.channel,'email')"})
    updated = [c["attributes"]["updated_at"] for c in camps.json()["data"]]
    assert updated != sorted(updated, key=datetime.fromisoformat)
    camps = session.get(
        emu.base_url + "/api/campaigns",
        params={"filter": "equals(messages.channel,'email')", "sort": "updated_at"},
    )
    updated = [datetime.fromisoformat(c["attributes"]["updated_at"]) for c in camps.json()["data"]]
    assert updated == sorted(updated)


def test_next_link_format(emu, session):
    params = {
        "filter": "greater-or-equal(datetime,2024-01-01T00:00:00Z),less-than(datetime,2025-01-01T00:00:00Z)",
        "page[size]": "10",
        "sort": "datetime",
        "fields[event]": "datetime",
        "include": "metric",
    }
    r = session.get(emu.base_url + "/api/events", params=params)
    first_page = [d["id"] for d in r.json()["data"]]
    assert first_page
    nxt = r.json()["links"]["next"]
    assert nxt.startswith(emu.base_url + "/api/events/?")
    raw = urllib.parse.urlsplit(nxt).query
    assert "page%5Bcursor%5D=" in raw and "page%5Bsize%5D=10" in raw and "[" not in raw and "+" not in raw
    pairs = urllib.parse.parse_qsl(raw)
    assert dict(pairs)["filter"] == params["filter"] and dict(pairs)["include"] == "metric"
    assert [k for k, _ in pairs].count("page[cursor]") == 1
    cursor = dict(pairs)["page[cursor]"]
    base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))  # opaque, but base64
    # A filter with spaces is encoded with %20, never '+'.
    r = session.get(emu.base_url + "/api/tags", params={"filter": "contains(name,'o')", "page[size]": "1"})
    r = session.get(emu.base_url + "/api/profiles", params={"filter": "equals(email,'a b@example.com')"})
    assert r.status_code == 200
    lists = session.get(emu.base_url + "/api/flows", params={"filter": "contains(name,'Welcome Series')"})
    assert lists.status_code == 200
    spaced = session.get(
        emu.base_url + "/api/lists/",
        params={"filter": "any(name,['Newsletter','VIP Customers'])", "page[size]": "1"},
    )
    assert "%20" in spaced.json()["links"]["next"] and "+" not in spaced.json()["links"]["next"]
    # Re-sending our own params alongside the next link duplicates them: 400.
    again = session.get(nxt, params={"page[size]": "10"})
    assert again.status_code == 400
    assert "duplicated" in error(again)["detail"]
    # prev link walks back to the first page
    second = session.get(nxt).json()
    back = session.get(second["links"]["prev"]).json()
    assert [d["id"] for d in back["data"]] == first_page
    assert [d["id"] for d in second["data"]] and set(first_page).isdisjoint(d["id"] for d in second["data"])


def test_cursor_stays_valid_when_records_are_appended():
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0)) as emu:
        r = get(emu, "/api/events", {"page[size]": "1000", "sort": "datetime"})
        first = [d["id"] for d in r.json()["data"]]
        nxt = r.json()["links"]["next"]
        newest = emu.account.append_events(5, datetime(2026, 10, 31, tzinfo=timezone.utc))
        late = emu.account.append_events(1, datetime(2023, 1, 2, tzinfo=timezone.utc))
        rest: list[str] = []
        while nxt:
            body = requests.get(nxt, headers=HEADERS, timeout=10).json()
            rest += [d["id"] for d in body["data"]]
            nxt = body["links"]["next"]
        seen = first + rest
        assert len(seen) == len(set(seen))
        assert set(newest) <= set(rest)
        assert set(seen) | set(late) == emu.account.expected_ids("event")


# ---- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "fragment"),
    [
        ("/api/profiles", {"page[size]": "101"}, "page[size]"),
        ("/api/lists/{list}/profiles", {"page[size]": "1000"}, "page[size]"),
        ("/api/lists", {"filter": "greater-or-equal(updated,2024-01-01T00:00:00Z)"}, "greater-or-equal"),
        ("/api/segments", {"filter": "less-than(updated,2024-01-01T00:00:00Z)"}, "less-than"),
        ("/api/profiles", {"filter": "greater-or-equal(updated,2024-01-01T00:00:00Z)"}, "greater-or-equal"),
        ("/api/profiles", {"filter": "greater-than(updated,'2024-01-01T00:00:00Z')"}, "datetime"),
        ("/api/profiles", {"filter": "greater-than(updated,2024-01-01T00:00:00 00:00)"}, "filter"),
        ("/api/events", {"filter": "equals(email,'x')"}, "not a valid field"),
        ("/api/events", {"filter": "or(equals(metric_id,'a'),equals(metric_id,'b'))"}, "'or'"),
        ("/api/events", {"filter": "equals(metric_id,abc)"}, "not a valid value"),
        ("/api/events", {"filter": "greater-than(datetime,2024-13-45T00:00:00Z)"}, "datetime"),
        ("/api/campaigns", {}, "filter"),
        ("/api/campaigns", {"filter": "equals(archived,false)"}, "messages.channel"),
        ("/api/campaigns", {"filter": "equals(messages.channel,'fax')"}, "email"),
        ("/api/coupon-codes", {"filter": "equals(status,'USED')"}, "coupon.id"),
        ("/api/profiles", {"sort": "name"}, "sort"),
        ("/api/profiles", {"include": "lists"}, "include"),
        ("/api/profiles", {"additional-fields[profile]": "everything"}, "additional-fields"),
        ("/api/profiles", {"fields[profile]": "email,shoe_size"}, "fields[profile]"),
        ("/api/profiles", {"page_size": "5"}, "page_size"),
        ("/api/profiles", {"page[cursor]": "not-a-cursor"}, "cursor"),
        ("/api/metrics", {"page[size]": "10"}, "page[size]"),
    ],
)
def test_invalid_requests_are_rejected(emu, path, params, fragment):
    lid = max(emu.account.members["list"], key=lambda k: len(emu.account.members["list"][k]))
    r = get(emu, path.replace("{list}", lid), params)
    assert r.status_code == 400, r.text
    body = error(r)
    assert body["code"] == "invalid" and body["status"] == 400
    assert fragment in body["detail"] or fragment == body["source"].get("parameter"), body
    assert set(body) >= {"id", "status", "code", "title", "detail", "source", "links", "meta"}


def test_duplicated_param_and_revision_rules(emu):
    r = requests.get(emu.base_url + "/api/profiles?page[size]=5&page[size]=5", headers=HEADERS, timeout=10)
    assert r.status_code == 400 and "duplicated" in error(r)["detail"]
    for revision, ok in [
        (None, False),
        ("2026-07-15", True),
        ("2024-10-15", True),
        ("2025-04-15.pre", True),
        ("2026-08-15", False),
        ("15-07-2026", False),
        ("2026-02-30", False),
    ]:
        headers = {"Authorization": HEADERS["Authorization"]}
        if revision:
            headers["revision"] = revision
        r = get(emu, "/api/accounts", headers=headers)
        assert (r.status_code == 200) == ok, (revision, r.text)
        if not ok:
            assert error(r)["code"] == "invalid" and "revision" in error(r)["detail"]


def test_validate_request_is_pure_and_matches_the_server(emu):
    ok = validate_request("GET", "/api/events/", [("page[size]", "1000"), ("sort", "-datetime")], HEADERS)
    assert ok == []
    assert validate_request("GET", "/api/events", [("page[size]", "1001")], HEADERS)
    assert validate_request("GET", "/api/events", [], {"revision": REVISION})
    assert validate_request("GET", "/api/events", [], {"Authorization": "x"})
    assert validate_request("GET", "/api/nothing", [], HEADERS)
    body = {
        "data": {
            "type": "metric-aggregate",
            "attributes": {
                "metric_id": "x",
                "measurements": ["count"],
                "filter": ["greater-than(datetime,2024-01-01)"],
            },
        }
    }
    assert validate_request("POST", "/api/metric-aggregates", [], HEADERS, json.dumps(body))
    # every request the server answered 200 is valid by the contract
    emu.clear_log()
    walk(emu, "/api/lists", {})
    get(emu, "/api/profiles", {"page[size]": "101"})
    assert emu.requests, "requests are logged"
    for entry in emu.requests:
        problems = validate_request(entry.method, entry.path, entry.query, {**entry.headers, **HEADERS}, entry.body)
        assert (entry.status == 200) == (not problems), (entry, problems)
        assert entry.template in ("/api/lists", "/api/profiles")
        assert entry.headers["Authorization"] == "Klaviyo-API-Key ***"


# ---- auth ----------------------------------------------------------------------------------------


def test_auth_errors(emu):
    r = get(emu, "/api/profiles", headers={"revision": REVISION})
    assert r.status_code == 401 and error(r)["code"] == "not_authenticated"
    r = get(emu, "/api/profiles", headers={"revision": REVISION, "Authorization": "Klaviyo-API-Key pk_wrong"})
    assert r.status_code == 401 and error(r)["code"] == "authentication_failed"
    assert error(r)["detail"] == "Incorrect authentication credentials."
    r = get(emu, "/api/profiles", headers={"revision": REVISION, "Authorization": "Bearer nope"})
    assert r.status_code == 401 and error(r)["code"] == "authentication_failed"
    emu.add_api_key("pk_noscope", scopes=["accounts:read"])
    limited = {"revision": REVISION, "Authorization": "Klaviyo-API-Key pk_noscope"}
    assert get(emu, "/api/accounts", headers=limited).status_code == 200
    r = get(emu, "/api/profiles", headers=limited)
    assert r.status_code == 403 and error(r)["code"] == "permission_denied"
    assert "profiles:read" not in r.text and "scope" not in error(r)["detail"].lower()
    emu.add_api_key("pk_lists", scopes=["lists:read"])
    lid = next(iter(emu.account.members["list"]))
    only_lists = {"revision": REVISION, "Authorization": "Klaviyo-API-Key pk_lists"}
    assert get(emu, f"/api/lists/{lid}/profiles", headers=only_lists).status_code == 403


def test_routing_404_405_and_trailing_slash(emu):
    r = get(emu, "/api/nothing-here")
    assert r.status_code == 404 and error(r)["code"] == "not_found"
    r = requests.delete(emu.base_url + "/api/accounts", headers=HEADERS, timeout=10)
    assert r.status_code == 405
    assert get(emu, "/api/profiles/").status_code == 200
    assert get(emu, "/api/profiles").status_code == 200
    assert get(emu, "/api/profiles/NOPE").status_code == 404


def test_oauth_refresh_rotation_and_expiry(emu):
    emu.add_oauth_client("cid", "csecret", refresh_token="rt1", expires_in=1, rotate=True)
    basic = "Basic " + base64.b64encode(b"cid:csecret").decode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    def refresh(token, auth=basic):
        return requests.post(
            emu.base_url + "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": token},
            headers={"Authorization": auth, **form},
            timeout=10,
        )

    bad = refresh("rt1", "Basic " + base64.b64encode(b"cid:wrong").decode())
    assert bad.status_code == 401 and bad.json() == {"error": "invalid_client"}
    assert refresh("nope").status_code == 400 and refresh("nope").json() == {"error": "invalid_grant"}
    tok = refresh("rt1")
    assert tok.status_code == 200
    body = tok.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 1 and body["refresh_token"] != "rt1"
    assert set(body) >= {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert refresh("rt1").json()["error"] == "invalid_grant"  # rotated: the old one is spent
    bearer = {"Authorization": f"Bearer {body['access_token']}", "revision": REVISION}
    assert get(emu, "/api/accounts", headers=bearer).status_code == 200
    logged = [e for e in emu.requests if e.path == "/oauth/token"][-1]
    assert "rt1" not in (logged.body or "") and logged.headers["Authorization"] == "Basic ***"
    time.sleep(1.1)
    assert get(emu, "/api/accounts", headers=bearer).status_code == 401
    again = refresh(body["refresh_token"])
    assert again.status_code == 200
    emu.add_oauth_client("cid2", "s2", refresh_token="keep", rotate=False, scopes=["accounts:read"])
    basic2 = "Basic " + base64.b64encode(b"cid2:s2").decode()
    one, two = refresh("keep", basic2).json(), refresh("keep", basic2).json()
    assert one["refresh_token"] == two["refresh_token"] == "keep"
    scoped = {"Authorization": f"Bearer {one['access_token']}", "revision": REVISION}
    assert get(emu, "/api/profiles", headers=scoped).status_code == 403


# ---- rate limits ---------------------------------------------------------------------------------


def test_rate_limit_429_with_retry_after():
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.1)) as emu, requests.Session() as s:
        s.headers.update(HEADERS)
        ok = s.get(emu.base_url + "/api/flows")
        assert ok.status_code == 200
        assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(ok.headers)
        assert ok.headers["RateLimit-Limit"] == "6"  # 60/m * 0.1
        statuses = [s.get(emu.base_url + "/api/flows").status_code for _ in range(3)]
        assert 429 in statuses
        r = s.get(emu.base_url + "/api/flows")
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1
        body = error(r)
        assert body["code"] == "throttled" and body["title"] == "Request was throttled."
        assert body["detail"].startswith("Request was throttled. Expected available in ")
        assert "RateLimit-Limit" not in r.headers
        assert any(e.fault == "429-limit" for e in emu.requests)
        # other operations have their own windows
        assert s.get(emu.base_url + "/api/lists").status_code == 200
        emu.config.rate_limit_scale = 0  # config is live
        assert s.get(emu.base_url + "/api/flows").status_code == 200
        emu.config.rate_limit_scale = 0.1
        emu.config.retry_after_omit_rate = 1.0
        emu.reset_rate_limits()
        results = [s.get(emu.base_url + "/api/flows") for _ in range(4)]
        throttled = [x for x in results if x.status_code == 429]
        assert throttled and all("Retry-After" not in x.headers for x in throttled)


def test_predictive_analytics_has_its_own_lower_limit():
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.1)) as emu:
        params = {"additional-fields[profile]": "predictive_analytics"}
        codes = [get(emu, "/api/profiles", params).status_code for _ in range(3)]
        assert codes[0] == 200 and 429 in codes  # 10/s * 0.1 = 1 per second
        assert get(emu, "/api/profiles").status_code == 200  # the plain bucket (75/s) is untouched


def test_rate_limiter_windows_and_daily_cap():
    now = [1_000_000.2]
    limiter = RateLimiter(clock=lambda: now[0])
    limit = RateLimit(burst=1, steady=2, daily=3)
    assert limiter.check("k", limit, 1.0).allowed
    blocked = limiter.check("k", limit, 1.0)
    assert not blocked.allowed and blocked.window == "burst" and blocked.retry_after == 1
    now[0] += 1
    assert limiter.check("k", limit, 1.0).allowed
    now[0] += 1
    steady = limiter.check("k", limit, 1.0)
    assert not steady.allowed and steady.window == "steady" and 1 <= steady.retry_after <= 60
    now[0] += 60
    assert limiter.check("k", limit, 1.0).allowed
    now[0] += 60
    daily = limiter.check("k", limit, 1.0)
    assert not daily.allowed and daily.window == "daily"
    midnight = (int(now[0]) // 86400 + 1) * 86400
    assert abs(daily.retry_after - (midnight - now[0])) <= 1
    assert limiter.check("k", limit, 1.0, daily=False).allowed
    assert limiter.check("other", limit, 0.0).allowed  # scale 0 = off


# ---- faults --------------------------------------------------------------------------------------


def test_forced_responses_and_every_fault_kind():
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0, timeout_delay_s=0.3)) as emu:
        emu.force(
            "/api/flows",
            [
                ForcedResponse(status=429, retry_after=2),
                ForcedResponse(status=503),
                ForcedResponse(kind="drop"),
                ForcedResponse(kind="truncated"),
                ForcedResponse(status=200, body={"data": []}),
            ],
        )
        r = get(emu, "/api/flows")
        assert r.status_code == 429 and r.headers["Retry-After"] == "2" and error(r)["code"] == "throttled"
        assert get(emu, "/api/flows").status_code == 503
        with pytest.raises(requests.ConnectionError):
            get(emu, "/api/flows")
        r = get(emu, "/api/flows")
        assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(r.content)
        with pytest.raises(ValueError):
            r.json()
        assert get(emu, "/api/flows").json() == {"data": []}
        assert get(emu, "/api/flows").json()["data"]  # queue drained: real answers again
        assert get(emu, "/api/lists").status_code == 200  # other paths untouched
        assert [e.fault for e in emu.requests][:5] == [
            "429-forced",
            "503-forced",
            "drop-forced",
            "truncated-forced",
            "200-forced",
        ]
        emu.config.fault_rate = 1.0
        for kind in ("500", "502_html", "503", "504", "truncated", "drop", "timeout"):
            emu.config.fault_kinds = (kind,)
            if kind in ("drop", "timeout"):
                started = time.monotonic()
                with pytest.raises(requests.ConnectionError):
                    get(emu, "/api/lists")
                if kind == "timeout":
                    assert time.monotonic() - started >= 0.25
                continue
            r = get(emu, "/api/lists")
            if kind == "truncated":
                assert r.status_code == 200
                with pytest.raises(ValueError):
                    r.json()
            elif kind == "502_html":
                assert r.status_code == 502 and r.headers["Content-Type"].startswith("text/html")
            else:
                assert r.status_code == int(kind) and error(r)["status"] == int(kind)
        emu.config.fault_kinds = ("timeout",)
        emu.config.timeout_delay_s = 5
        with pytest.raises(requests.Timeout):
            requests.get(emu.base_url + "/api/lists", headers=HEADERS, timeout=0.3)
        faults = {e.fault for e in emu.requests}
        assert {"500", "502_html", "503", "504", "truncated", "drop", "timeout"} <= faults


def test_latency_and_random_faults_are_seeded():
    def run():
        with Emulator(
            EmulatorConfig(size="tiny", rate_limit_scale=0, fault_rate=0.5, fault_kinds=("500", "503"))
        ) as emu:
            return [get(emu, "/api/accounts").status_code for _ in range(12)]

    first = run()
    assert first == run() and {500, 503} & set(first) and 200 in first
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0, latency_ms=60)) as emu:
        started = time.monotonic()
        get(emu, "/api/accounts")
        assert time.monotonic() - started >= 0.06


# ---- data semantics ------------------------------------------------------------------------------


def test_filters_really_filter(emu, session):
    data = emu.account
    start, end = datetime(2024, 3, 1, tzinfo=timezone.utc), datetime(2024, 6, 1, tzinfo=timezone.utc)
    f = "greater-or-equal(datetime,2024-03-01T00:00:00Z),less-than(datetime,2024-06-01T00:00:00+00:00)"
    ids, _ = walk(emu, "/api/events", {"filter": f, "page[size]": "1000"})
    expected = set()
    for eid in data.expected_ids("event"):
        when = datetime.fromisoformat(data.get("event", eid).attrs["datetime"])
        if start <= when < end:
            expected.add(eid)
    assert set(ids) == expected and expected
    metric = data.metric_id("Placed Order")
    ids, _ = walk(emu, "/api/events", {"filter": f"equals(metric_id,'{metric}')", "page[size]": "1000"})
    assert ids and all(data.get("event", i).rels["metric"] == metric for i in ids)
    profile = next(iter(data.expected_ids("profile")))
    ids, _ = walk(emu, "/api/events", {"filter": f'equals(profile_id,"{profile}")', "sort": "-datetime"})
    assert ids and all(data.get("event", i).rels["profile"] == profile for i in ids)
    r = session.get(
        emu.base_url + "/api/profiles",
        params={
            "filter": "greater-than(subscriptions.email.marketing.suppression.timestamp,2020-01-01T00:00:00Z)",
            "additional-fields[profile]": "subscriptions",
            "page[size]": "100",
        },
    )
    suppressed = r.json()["data"]
    assert suppressed and all(p["attributes"]["subscriptions"]["email"]["marketing"]["suppression"] for p in suppressed)
    r = session.get(
        emu.base_url + "/api/profiles",
        params={"filter": "equals(subscriptions.email.marketing.list_suppressions.reason,'USER_SUPPRESSED')"},
    )
    assert r.json()["data"]
    flows, _ = walk(emu, "/api/flows", {})
    archived, _ = walk(emu, "/api/flows", {"filter": "equals(archived,true)"})
    assert flows and archived and not set(flows) & set(archived)
    assert set(flows) | set(archived) == data.expected_ids("flow")
    lists = session.get(emu.base_url + "/api/lists", params={"filter": "greater-than(updated,2025-06-01T00:00:00Z)"})
    for item in lists.json()["data"]:
        assert datetime.fromisoformat(item["attributes"]["updated"]) > datetime(2025, 6, 1, tzinfo=timezone.utc)
    for channel in ("email", "sms", "mobile_push"):
        got, _ = walk(emu, "/api/campaigns", {"filter": f"equals(messages.channel,'{channel}')"})
        assert set(got) == data.campaigns_by_channel(channel, archived=False)
        got, _ = walk(
            emu,
            "/api/campaigns",
            {"filter": f"and(equals(messages.channel,'{channel}'),equals(archived,true))"},
        )
        assert set(got) == data.campaigns_by_channel(channel, archived=True)


def test_hard_cases_exist(emu, session):
    data = emu.account
    # >= 30 events share one timestamp across the 1000-event page boundary of a sort=datetime read
    r = session.get(emu.base_url + "/api/events", params={"page[size]": "1000", "sort": "datetime"})
    page1 = r.json()["data"]
    page2 = session.get(r.json()["links"]["next"]).json()["data"]
    stamp = page1[-1]["attributes"]["datetime"]
    tied = [e for e in page1 + page2 if e["attributes"]["datetime"] == stamp]
    assert len(tied) >= 30 and page2[0]["attributes"]["datetime"] == stamp
    # three future-dated events, after the fixed timeline
    future = data.future_event_ids()
    assert len(future) == 3
    now = datetime.now(timezone.utc)
    for eid in future:
        assert datetime.fromisoformat(data.get("event", eid).attrs["datetime"]) > now + timedelta(days=29)
    # archived flows and campaigns, every channel
    assert any(r.attrs["archived"] for r in data.records("flow"))
    assert {r.extra["channel"] for r in data.records("campaign")} == {"email", "sms", "mobile_push"}
    assert any(r.attrs["archived"] for r in data.records("campaign"))
    # > 10 lists and segments, several sharing `updated`
    for kind in ("list", "segment"):
        updated = [r.attrs["updated"] for r in data.records(kind)]
        assert len(updated) > 10 and max(updated.count(u) for u in updated) >= 3
    # a list with > 100 members, members sharing joined_group_at
    big = max(data.members["list"], key=lambda k: len(data.members["list"][k]))
    joined = list(data.list_members(big).values())
    assert len(joined) > 100 and max(joined.count(j) for j in joined) >= 5
    ids, pages = walk(emu, f"/api/lists/{big}/profiles", {"page[size]": "100", "sort": "joined_group_at"})
    assert pages == 2 and set(ids) == set(data.list_members(big))
    # profiles sharing `updated` across the 100-profile page boundary (sort=updated)
    ordered = sorted(data.records("profile"), key=lambda p: (datetime.fromisoformat(p.attrs["updated"]), p.id))
    assert ordered[99].attrs["updated"] == ordered[100].attrs["updated"]
    # mixed-type custom properties
    kinds = {type(p.attrs["properties"].get("lifetime_score")).__name__ for p in data.records("profile")}
    assert {"str", "float", "list", "dict"} <= kinds


def test_mutation_helpers(emu):
    data = emu.account
    late = data.append_events(
        2, datetime(2024, 2, 2, 12, tzinfo=timezone.utc), metric_id=data.metric_id("Placed Order")
    )
    ids, _ = walk(
        emu,
        "/api/events",
        {"filter": "greater-or-equal(datetime,2024-02-02T00:00:00Z),less-than(datetime,2024-02-03T00:00:00Z)"},
    )
    assert set(late) <= set(ids)
    pid = data.add_profile(email="new.person@example.com")
    assert pid in data.expected_ids("profile")
    data.touch_profile(pid, datetime(2026, 10, 30, tzinfo=timezone.utc))
    r = get(emu, "/api/profiles", {"filter": "greater-than(updated,2026-10-29T00:00:00Z)"})
    assert pid in [p["id"] for p in r.json()["data"]]
    lid = data.records("list")[1].id
    data.add_list_member(lid, pid, datetime(2026, 10, 30, tzinfo=timezone.utc))
    r = get(emu, f"/api/lists/{lid}/profiles", {"filter": "greater-than(joined_group_at,2026-10-29T00:00:00Z)"})
    joined = {p["id"]: p["attributes"]["joined_group_at"] for p in r.json()["data"]}
    assert joined[pid] == "2026-10-30T00:00:00+00:00"
    data.remove_list_member(lid, pid)
    assert pid not in data.list_members(lid)
    data.touch("flow", data.records("flow")[0].id, datetime(2026, 10, 31, tzinfo=timezone.utc))
    r = get(emu, "/api/flows", {"filter": "greater-than(updated,2026-10-30T00:00:00Z)"})
    assert [f["id"] for f in r.json()["data"]] == [data.records("flow")[0].id]


def test_same_seed_same_account():
    a, b = AccountData("tiny", 3), AccountData("tiny", 3)
    assert a.expected_ids("profile") == b.expected_ids("profile")
    assert a.expected_ids("event") == b.expected_ids("event")
    assert AccountData("tiny", 4).expected_ids("profile") != a.expected_ids("profile")


def test_large_account_is_lazy():
    # Speed is the benchmark's to measure (benchmarks/run.py), not a test's: here, what it serves.
    data = AccountData("large", 1)
    assert data.event_count() == 1_000_003
    with Emulator(EmulatorConfig(size="large", rate_limit_scale=0), account=data) as emu:
        f = "greater-or-equal(datetime,2025-01-01T00:00:00Z)"
        get(emu, "/api/events", {"filter": f, "page[size]": "1000"})
        r = get(emu, "/api/events", {"filter": f, "page[size]": "1000", "include": "metric"})
        assert r.status_code == 200 and len(r.json()["data"]) == 1000
        r2 = requests.get(r.json()["links"]["next"], headers=HEADERS, timeout=10)
        assert r2.json()["data"][0]["attributes"]["datetime"] >= r.json()["data"][-1]["attributes"]["datetime"]


# ---- reports -------------------------------------------------------------------------------------


def test_reports_and_metric_aggregates(emu):
    data = emu.account
    conv = data.metric_id("Placed Order")
    tf = {"start": "2024-01-01T00:00:00+00:00", "end": "2024-12-01T00:00:00+00:00"}
    bodies = {
        "/api/campaign-values-reports": {
            "statistics": ["recipients", "open_rate"],
            "timeframe": tf,
            "conversion_metric_id": conv,
        },
        "/api/flow-values-reports": {
            "statistics": ["recipients", "click_rate"],
            "timeframe": {"key": "last_365_days"},
            "conversion_metric_id": conv,
        },
        "/api/flow-series-reports": {
            "statistics": ["recipients"],
            "interval": "weekly",
            "timeframe": tf,
            "conversion_metric_id": conv,
        },
        "/api/segment-series-reports": {
            "statistics": ["members_added", "total_members"],
            "interval": "weekly",
            "timeframe": tf,
        },
        "/api/segment-values-reports": {"statistics": ["members_added"], "timeframe": tf},
        "/api/form-series-reports": {
            "statistics": ["viewed_form", "submit_rate"],
            "interval": "daily",
            "timeframe": {"key": "last_30_days"},
        },
        "/api/form-values-reports": {"statistics": ["submits"], "timeframe": tf},
        "/api/metric-aggregates": {
            "metric_id": conv,
            "measurements": ["count", "sum_value", "unique"],
            "interval": "month",
            "page_size": 5,
            "filter": [
                "greater-or-equal(datetime,2024-01-01T00:00:00)",
                "less-than(datetime,2025-01-01T00:00:00)",
            ],
            "by": ["$value_currency"],
        },
    }
    with requests.Session() as s:
        s.headers.update({**HEADERS, "Content-Type": "application/vnd.api+json"})
        for path, attrs in bodies.items():
            doc_type = "metric-aggregate" if path.endswith("aggregates") else path.split("/")[2][:-1]
            r = s.post(emu.base_url + path, json={"data": {"type": doc_type, "attributes": attrs}})
            assert r.status_code == 200, (path, r.text)
            assert not response_errors("POST", path, r.json()), path
            again = s.post(emu.base_url + path, json={"data": {"type": doc_type, "attributes": attrs}})
            assert again.json() == r.json()  # re-reads are idempotent
        agg = r.json()["data"]["attributes"]
        assert len(agg["dates"]) == 12 and sum(agg["data"][0]["measurements"]["count"]) > 0
        bad = {"statistics": ["recipients"], "timeframe": tf}
        r = s.post(
            emu.base_url + "/api/campaign-values-reports",
            json={"data": {"type": "campaign-values-report", "attributes": bad}},
        )
        assert r.status_code == 400 and "conversion_metric_id" in error(r)["detail"]
        r = s.post(
            emu.base_url + "/api/flow-series-reports",
            json={
                "data": {
                    "type": "flow-series-report",
                    "attributes": {**bodies["/api/flow-series-reports"], "interval": "hourly"},
                }
            },
        )
        assert r.status_code == 400
        r = s.post(
            emu.base_url + "/api/segment-values-reports",
            json={
                "data": {
                    "type": "segment-values-report",
                    "attributes": {"statistics": ["members_added"], "timeframe": {"key": "forever"}},
                }
            },
        )
        assert r.status_code == 400
        r = s.post(
            emu.base_url + "/api/metric-aggregates",
            json={
                "data": {
                    "type": "metric-aggregate",
                    "attributes": {
                        **bodies["/api/metric-aggregates"],
                        "filter": ["less-than(datetime,2025-01-01)"],
                    },
                }
            },
        )
        assert r.status_code == 400 and "greater-or-equal" in error(r)["detail"]


def test_report_daily_cap_when_scaled():
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.001)) as emu:
        body = {
            "data": {
                "type": "segment-values-report",
                "attributes": {"statistics": ["members_added"], "timeframe": {"key": "last_30_days"}},
            }
        }
        codes = [
            requests.post(emu.base_url + "/api/segment-values-reports", json=body, headers=HEADERS, timeout=10)
            for _ in range(2)
        ]
        assert codes[0].status_code == 200 and codes[1].status_code == 429
        assert int(codes[1].headers["Retry-After"]) >= 1


# ---- filter grammar ------------------------------------------------------------------------------


def test_filter_grammar():
    node = parse_filter("and(equals(a,'x'),any(b,[\"p\",'q']),greater-than(c,2024-01-01T00:00:00Z)),has(d)")
    assert node.op == "and"
    for bad in ["equals(a,x)", "equals(a,'x'", "nope(a,'x')", "equals(a,'x'))", "", "and(equals(a,1))"]:
        with pytest.raises(FilterError):
            parse_filter(bad)
    parse_filter("equals(a,1.5),equals(b,true),equals(c,null),less-than(d,2024-01-01)")


# ---- lifecycle -----------------------------------------------------------------------------------


def test_stop_leaves_no_threads_and_command_line_works():
    before = {t.ident for t in threading.enumerate()}
    emu = Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0)).start()
    s = requests.Session()
    s.get(emu.base_url + "/api/accounts", headers=HEADERS, timeout=5)  # leaves a keep-alive connection open
    emu.stop()
    time.sleep(0.05)
    leftover = [t for t in threading.enumerate() if t.ident not in before and t.name.startswith("klaviyo")]
    assert not leftover
    s.close()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "klaviyo_emulator", "--port", "0", "--size", "tiny"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("Klaviyo emulator on http://127.0.0.1:") and DEMO_API_KEY in line
        url = line.split(" on ")[1].split(" ")[0]
        assert requests.get(url + "/api/accounts", headers=HEADERS, timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
