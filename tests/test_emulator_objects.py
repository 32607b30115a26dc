"""The emulator's writes of the objects a team manages, over HTTP: templates, segments, campaign drafts,
images, lists, catalog and suppression bulk jobs. Each write is read back through the GET endpoints the tap
uses; caps, bad references and sent campaigns are refused; jobs complete on the emulator's (fake) clock."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from klaviyo_emulator import DEMO_API_KEY, Emulator, EmulatorConfig  # noqa: E402
from klaviyo_emulator.contract import validate_request  # noqa: E402
from klaviyo_emulator.ratelimit import RateLimiter  # noqa: E402
from klaviyo_emulator.records import Rec  # noqa: E402
from klaviyo_emulator.schema_check import response_errors  # noqa: E402
from klaviyo_emulator.spec import get_spec  # noqa: E402
from tests.fake_clock import FakeClock  # noqa: E402
from tests.harness import run_tap, select_only  # noqa: E402

HEADERS = {
    "Authorization": f"Klaviyo-API-Key {DEMO_API_KEY}",
    "revision": "2026-07-15",
    "content-type": "application/vnd.api+json",
}
DELAY = 3.0
#: A UTC midnight: wall-clock windows (daily caps) start here, whatever today's date is.
MIDNIGHT = 1_800_000_000 - 1_800_000_000 % 86_400


class Client:
    """requests against one emulator, checking every 2xx answer against the spec's response schema."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.session = requests.Session()
        self.session.headers.update(HEADERS)

    def call(self, method: str, path: str, body: Any = None, **params: str) -> requests.Response:
        r = self.session.request(method, self.emu.base_url + path, json=body, params=params or None, timeout=10)
        if r.ok and r.content:
            op = get_spec().match(method, path)
            assert op is not None
            assert response_errors(method, op[0].template, r.json(), r.status_code) == [], (method, path)
        return r

    def get(self, path: str, **params: str) -> dict[str, Any]:
        r = self.call("GET", path, **params)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def ids(self, path: str, **params: str) -> set[str]:
        """Ids of every page of a collection (following `links.next`)."""
        doc = self.get(path, **params)
        found = {r["id"] for r in doc["data"]}
        while doc["links"].get("next"):
            r = self.session.get(doc["links"]["next"], timeout=10)
            assert r.status_code == 200, r.text
            doc = r.json()
            found |= {r["id"] for r in doc["data"]}
        return found

    def post(self, path: str, body: Any) -> requests.Response:
        return self.call("POST", path, body)

    def patch(self, path: str, body: Any) -> requests.Response:
        return self.call("PATCH", path, body)

    def delete(self, path: str) -> requests.Response:
        return self.call("DELETE", path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(clock: FakeClock) -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0, job_delay_s=DELAY), clock=clock.monotonic) as e:
        yield e


@pytest.fixture
def api(emu: Emulator) -> Client:
    return Client(emu)


def detail(r: requests.Response) -> str:
    return str(r.json()["errors"][0]["detail"])


def template_body(name: str, html: str = "<p>hi</p>") -> dict[str, Any]:
    return {
        "data": {"type": "template", "attributes": {"name": name, "editor_type": "CODE", "html": html, "text": "hi"}}
    }


def segment_body(name: str, conditions: list[dict[str, Any]]) -> dict[str, Any]:
    definition = {"condition_groups": [{"conditions": conditions}]}
    return {"data": {"type": "segment", "attributes": {"name": name, "definition": definition, "is_starred": True}}}


def member_of(*group_ids: str) -> dict[str, Any]:
    return {"type": "profile-group-membership", "is_member": True, "group_ids": list(group_ids)}


def metric_condition(metric_id: str) -> dict[str, Any]:
    return {
        "type": "profile-metric",
        "metric_id": metric_id,
        "measurement": "count",
        "measurement_filter": {"type": "numeric", "operator": "greater-than", "value": 0},
        "timeframe_filter": {"type": "date", "operator": "alltime"},
    }


def first_id(emu: Emulator, rtype: str) -> str:
    return next(iter(emu.account.store[rtype]))


# ---- templates -----------------------------------------------------------------------------------


def test_template_create_update_delete_read_back(api: Client) -> None:
    r = api.post("/api/templates", template_body("Welcome", "<h1>Hi</h1>"))
    assert r.status_code == 201, r.text
    tid = r.json()["data"]["id"]
    got = api.get(f"/api/templates/{tid}")["data"]["attributes"]
    assert (got["name"], got["editor_type"], got["html"], got["text"]) == ("Welcome", "CODE", "<h1>Hi</h1>", "hi")
    assert tid in api.ids("/api/templates")
    patch = {"data": {"type": "template", "id": tid, "attributes": {"name": "Welcome 2", "html": "<h1>Yo</h1>"}}}
    assert api.patch(f"/api/templates/{tid}", patch).status_code == 200
    assert api.get(f"/api/templates/{tid}")["data"]["attributes"]["html"] == "<h1>Yo</h1>"
    other = {"data": {**patch["data"], "id": "nope"}}
    assert api.patch(f"/api/templates/{tid}", other).status_code == 409
    assert api.delete(f"/api/templates/{tid}").status_code == 204
    assert api.call("GET", f"/api/templates/{tid}").status_code == 404
    assert api.delete(f"/api/templates/{tid}").status_code == 404


def test_template_body_validated_and_cap(api: Client, emu: Emulator) -> None:
    no_name = {"data": {"type": "template", "attributes": {"editor_type": "CODE", "html": "<p/>"}}}
    r = api.post("/api/templates", no_name)
    assert r.status_code == 400 and "name" in detail(r)
    assert api.post("/api/templates", {"data": {**template_body("x")["data"], "type": "list"}}).status_code == 400
    no_html = {"data": {"type": "template", "attributes": {"name": "x", "editor_type": "CODE"}}}
    assert "html" in detail(api.post("/api/templates", no_html))
    templates = emu.account.store["template"]
    for i in range(1000 - len(templates) - 1):
        templates[f"fill{i}"] = Rec("template", f"fill{i}", {**next(iter(templates.values())).attrs, "name": f"f{i}"})
    assert api.post("/api/templates", template_body("the 1,000th")).status_code == 201
    r = api.post("/api/templates", template_body("one too many"))
    assert r.status_code == 400 and "1000 templates" in detail(r)


# ---- segments ------------------------------------------------------------------------------------


def test_segment_create_with_references_patch_delete(api: Client, emu: Emulator) -> None:
    list_id, segment_id = first_id(emu, "list"), first_id(emu, "segment")
    metric_id = first_id(emu, "metric")
    body = segment_body("Buyers", [member_of(list_id, segment_id), metric_condition(metric_id)])
    r = api.post("/api/segments", body)
    assert r.status_code == 201, r.text
    sid = r.json()["data"]["id"]
    got = api.get(f"/api/segments/{sid}")["data"]["attributes"]
    assert got["definition"] == body["data"]["attributes"]["definition"] and got["is_starred"] is True
    patch = {"data": {"type": "segment", "id": sid, "attributes": {"is_starred": False, "name": "Buyers 2"}}}
    assert api.patch(f"/api/segments/{sid}", patch).status_code == 200
    assert api.get(f"/api/segments/{sid}")["data"]["attributes"]["name"] == "Buyers 2"
    assert api.delete(f"/api/segments/{sid}").status_code == 204
    assert sid not in api.ids("/api/segments")


def test_segment_unknown_references_are_400(api: Client, emu: Emulator) -> None:
    r = api.post("/api/segments", segment_body("x", [member_of("NOLIST")]))
    assert r.status_code == 400 and "NOLIST" in detail(r)
    assert r.json()["errors"][0]["source"]["pointer"].endswith("/group_ids/0")
    r = api.post("/api/segments", segment_body("x", [metric_condition("NOMETRIC")]))
    assert r.status_code == 400 and "NOMETRIC" in detail(r)
    sid = first_id(emu, "segment")
    patch = segment_body("x", [member_of("NOLIST")])["data"]
    r = api.patch(f"/api/segments/{sid}", {"data": {**patch, "id": sid}})
    assert r.status_code == 400
    assert api.post("/api/segments", {"data": {"type": "segment", "attributes": {"name": "x"}}}).status_code == 400


def test_demo_segment_definitions_name_real_objects(emu: Emulator) -> None:
    known = set(emu.account.store["list"]) | set(emu.account.store["segment"]) | set(emu.account.store["metric"])
    named = [
        ref
        for seg in emu.account.store["segment"].values()
        for group in seg.attrs["definition"]["condition_groups"]
        for cond in group["conditions"]
        for ref in [*cond.get("group_ids", []), *([cond["metric_id"]] if "metric_id" in cond else [])]
    ]
    assert named and set(named) <= known
    assert any(ref in emu.account.store["metric"] for ref in named)


@pytest.mark.parametrize(
    ("path", "interval"),
    [("/api/segments", 4.1), ("/api/images", 0.7)],
)
def test_daily_cap_of_100_creations(path: str, interval: float) -> None:
    """Segments (1/s, 15/min) and images (3/s, 100/min) are capped at 100 creations a UTC day: 429 past it."""
    wall = [MIDNIGHT + 60.0]
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=1.0)) as emu:
        emu.limiter = RateLimiter(clock=lambda: wall[0])
        api = Client(emu)
        list_id = first_id(emu, "list")
        codes = []
        for i in range(101):
            wall[0] += interval
            body = (
                segment_body(f"s{i}", [member_of(list_id)])
                if path == "/api/segments"
                else {"data": {"type": "image", "attributes": {"import_from_url": f"https://x.example/{i}.png"}}}
            )
            codes.append(api.post(path, body).status_code)
        assert codes[:100] == [201] * 100 and codes[100] == 429
        wall[0] = MIDNIGHT + 86_400 + 1  # the next UTC day
        assert api.post(path, body).status_code == 201


# ---- images and lists ----------------------------------------------------------------------------


def test_image_import_rename_patch_no_delete(api: Client) -> None:
    body = {"data": {"type": "image", "attributes": {"import_from_url": "https://cdn.shop.example/a/hero.png"}}}
    first = api.post("/api/images", body)
    assert first.status_code == 201, first.text
    attrs = first.json()["data"]["attributes"]
    assert (attrs["name"], attrs["format"], attrs["hidden"]) == ("hero.png", "png", False)
    again = api.post("/api/images", body).json()["data"]
    assert again["attributes"]["name"] == "hero (1).png", "a taken name gets a suffix"
    assert api.post("/api/images", body).json()["data"]["attributes"]["name"] == "hero (2).png"
    iid = again["id"]
    patch = {"data": {"type": "image", "id": iid, "attributes": {"hidden": True, "name": "hero-old.png"}}}
    assert api.patch(f"/api/images/{iid}", patch).status_code == 200
    got = api.get(f"/api/images/{iid}")["data"]["attributes"]
    assert (got["hidden"], got["name"]) == (True, "hero-old.png")
    assert api.delete(f"/api/images/{iid}").status_code == 405
    bad = {"data": {"type": "image", "attributes": {"import_from_url": "ftp://x/y.png"}}}
    assert api.post("/api/images", bad).status_code == 400
    data_uri = {"data": {"type": "image", "attributes": {"import_from_url": "data:image/gif;base64,R0lGOD=="}}}
    assert api.post("/api/images", data_uri).json()["data"]["attributes"]["format"] == "gif"


def test_list_patch_and_delete(api: Client, emu: Emulator) -> None:
    lid = first_id(emu, "list")
    patch = {"data": {"type": "list", "id": lid, "attributes": {"name": "Renamed", "opt_in_process": "double_opt_in"}}}
    assert api.patch(f"/api/lists/{lid}", patch).status_code == 200
    got = api.get(f"/api/lists/{lid}")["data"]["attributes"]
    assert (got["name"], got["opt_in_process"]) == ("Renamed", "double_opt_in")
    bad = {"data": {"type": "list", "id": lid, "attributes": {"opt_in_process": "triple"}}}
    assert api.patch(f"/api/lists/{lid}", bad).status_code == 400
    assert api.delete(f"/api/lists/{lid}").status_code == 204
    assert api.call("GET", f"/api/lists/{lid}").status_code == 404
    assert emu.account.list_members(lid) == {}


# ---- campaigns -----------------------------------------------------------------------------------


def campaign_body(name: str, included: list[str]) -> dict[str, Any]:
    message = {
        "type": "campaign-message",
        "attributes": {
            "definition": {
                "channel": "email",
                "label": "A",
                "content": {"subject": "Hello", "from_email": "shop@example.com", "from_label": "Shop"},
            }
        },
    }
    return {
        "data": {
            "type": "campaign",
            "attributes": {
                "name": name,
                "audiences": {"included": included, "excluded": []},
                "send_strategy": {"method": "static", "datetime": "2030-01-01T10:00:00+00:00"},
                "send_options": {"use_smart_sending": False},
                "tracking_options": {
                    "add_tracking_params": False,
                    "is_tracking_clicks": True,
                    "is_tracking_opens": True,
                },
                "campaign-messages": {"data": [message]},
            },
        }
    }


def test_campaign_draft_with_messages_and_template(api: Client, emu: Emulator) -> None:
    lid = first_id(emu, "list")
    r = api.post("/api/campaigns", campaign_body("Launch", [lid]))
    assert r.status_code == 201, r.text
    cid = r.json()["data"]["id"]
    message_ids = [m["id"] for m in r.json()["data"]["relationships"]["campaign-messages"]["data"]]
    assert len(message_ids) == 1
    got = api.get(f"/api/campaigns/{cid}")["data"]["attributes"]
    assert got["status"] == "Draft" and got["audiences"]["included"] == [lid]
    assert got["send_strategy"]["method"] == "static" and got["send_options"] == {"use_smart_sending": False}
    assert cid in api.ids("/api/campaigns", filter="equals(messages.channel,'email')")
    mid = message_ids[0]
    content = {"channel": "email", "content": {"subject": "Hello again"}}
    patch = {"data": {"type": "campaign-message", "id": mid, "attributes": {"definition": content}}}
    assert api.patch(f"/api/campaign-messages/{mid}", patch).status_code == 200
    definition = api.get(f"/api/campaign-messages/{mid}")["data"]["attributes"]["definition"]
    assert definition["content"]["subject"] == "Hello again" and definition["content"]["from_label"] == "Shop"
    source = next(t for t in emu.account.store["template"].values() if t.attrs["editor_type"] == "CODE")
    assign = {
        "data": {
            "type": "campaign-message",
            "id": mid,
            "relationships": {"template": {"data": {"type": "template", "id": source.id}}},
        }
    }
    assert api.post("/api/campaign-message-assign-template", assign).status_code == 200
    copy = api.get(f"/api/campaign-messages/{mid}/template")["data"]
    assert copy["id"] != source.id and copy["attributes"]["html"] == source.attrs["html"]
    assert copy["id"] not in api.ids("/api/templates")
    assert api.ids("/api/templates") == emu.account.expected_ids("template")
    rename = {"data": {"type": "campaign", "id": cid, "attributes": {"name": "Launch 2"}}}
    assert api.patch(f"/api/campaigns/{cid}", rename).status_code == 200
    assert api.get(f"/api/campaigns/{cid}")["data"]["attributes"]["name"] == "Launch 2"
    assert api.delete(f"/api/campaigns/{cid}").status_code == 204
    assert api.call("GET", f"/api/campaigns/{cid}").status_code == 404
    assert api.call("GET", f"/api/campaign-messages/{mid}").status_code == 404


def test_campaign_refusals(api: Client, emu: Emulator) -> None:
    r = api.post("/api/campaigns", campaign_body("Lost", ["NOLIST"]))
    assert r.status_code == 400 and "NOLIST" in detail(r)
    sent = next(c for c in emu.account.store["campaign"].values() if c.attrs["status"] == "Sent")
    rename = {"data": {"type": "campaign", "id": sent.id, "attributes": {"name": "changed"}}}
    r = api.patch(f"/api/campaigns/{sent.id}", rename)
    assert r.status_code == 400 and "draft" in detail(r)
    assert api.delete(f"/api/campaigns/{sent.id}").status_code == 400
    mid = sent.rels["campaign-messages"][0]
    patch = {"data": {"type": "campaign-message", "id": mid, "attributes": {"definition": {"channel": "email"}}}}
    assert api.patch(f"/api/campaign-messages/{mid}", patch).status_code == 400
    assert api.get(f"/api/campaigns/{sent.id}")["data"]["attributes"]["name"] == sent.attrs["name"]
    scheduled = next(c for c in emu.account.store["campaign"].values() if c.attrs["status"] == "Scheduled")
    assert api.delete(f"/api/campaigns/{scheduled.id}").status_code == 400


def test_send_job_calls_are_recorded(api: Client, emu: Emulator) -> None:
    assert emu.campaigns.send_job_calls == []
    cid = api.post("/api/campaigns", campaign_body("Go", [first_id(emu, "list")])).json()["data"]["id"]
    r = api.post("/api/campaign-send-jobs", {"data": {"type": "campaign-send-job", "id": cid}})
    assert r.status_code == 202
    assert api.get(f"/api/campaigns/{cid}")["data"]["attributes"]["status"] == "Sending"
    r = api.post("/api/campaign-send-jobs", {"data": {"type": "campaign-send-job", "id": cid}})
    assert r.status_code == 400, "a campaign that left draft cannot be sent again"
    assert [call.campaign_id for call in emu.campaigns.send_job_calls] == [cid, cid]


# ---- catalog jobs --------------------------------------------------------------------------------


def catalog_job(kind: str, action: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    collection = {"item": "items", "variant": "variants", "category": "categories"}[kind]
    return {"data": {"type": f"catalog-{kind}-bulk-{action}-job", "attributes": {collection: {"data": rows}}}}


def cid_of(external_id: str) -> str:
    return f"$custom:::$default:::{external_id}"


def item_row(external_id: str, categories: list[str]) -> dict[str, Any]:
    return {
        "type": "catalog-item",
        "attributes": {
            "external_id": external_id,
            "title": f"Item {external_id}",
            "description": "d",
            "url": f"https://shop.example/{external_id}",
            "price": 10.0,
        },
        "relationships": {"categories": {"data": [{"type": "catalog-category", "id": c} for c in categories]}},
    }


def run_job(api: Client, clock: FakeClock, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Post a job, see it queued, move the clock past the delay, and return the finished job's attributes."""
    r = api.post(path, body)
    assert r.status_code == 202, r.text
    job = r.json()["data"]
    assert job["attributes"]["status"] == "queued"
    assert api.get(f"{path}/{job['id']}")["data"]["attributes"]["status"] == "queued"
    clock.sleep(DELAY / 2)
    assert api.get(f"{path}/{job['id']}")["data"]["attributes"]["status"] == "processing"
    clock.sleep(DELAY / 2)
    done = api.get(f"{path}/{job['id']}")["data"]["attributes"]
    assert done["status"] == "complete" and done["completed_at"]
    return dict(done)


def test_catalog_jobs_create_update_delete_with_row_errors(api: Client, clock: FakeClock) -> None:
    cats = [{"type": "catalog-category", "attributes": {"external_id": f"c{i}", "name": f"C{i}"}} for i in (1, 2)]
    done = run_job(api, clock, "/api/catalog-category-bulk-create-jobs", catalog_job("category", "create", cats))
    assert (done["completed_count"], done["failed_count"], done["errors"]) == (2, 0, [])
    rows = [item_row("i1", [cid_of("c1")]), item_row("i2", [cid_of("nope")]), item_row("SKU-0000", [])]
    done = run_job(api, clock, "/api/catalog-item-bulk-create-jobs", catalog_job("item", "create", rows))
    assert (done["total_count"], done["completed_count"], done["failed_count"]) == (3, 1, 2)
    pointers = {e["source"]["pointer"]: e["detail"] for e in done["errors"]}
    assert "/data/attributes/items/data/1/relationships/categories/data/0" in pointers
    assert "already exists" in pointers["/data/attributes/items/data/2/attributes/external_id"]
    item = api.get(f"/api/catalog-items/{cid_of('i1')}")["data"]
    assert item["attributes"]["title"] == "Item i1"
    assert [c["id"] for c in api.get(f"/api/catalog-items/{cid_of('i1')}/relationships/categories")["data"]] == [
        cid_of("c1")
    ]
    variant: dict[str, Any] = {
        "type": "catalog-variant",
        "attributes": {
            "external_id": "i1-s",
            "title": "S",
            "sku": "i1-s",
            "description": "d",
            "url": "u",
            "price": 1.0,
            "inventory_quantity": 3,
        },
        "relationships": {"item": {"data": {"type": "catalog-item", "id": cid_of("i1")}}},
    }
    orphan = {
        **variant,
        "attributes": {**variant["attributes"], "external_id": "x-s", "sku": "x-s"},
        "relationships": {"item": {"data": {"type": "catalog-item", "id": cid_of("missing")}}},
    }
    done = run_job(
        api, clock, "/api/catalog-variant-bulk-create-jobs", catalog_job("variant", "create", [variant, orphan])
    )
    assert (done["completed_count"], done["failed_count"]) == (1, 1)
    got = api.get(f"/api/catalog-variants/{cid_of('i1-s')}")["data"]
    assert got["relationships"]["item"]["data"]["id"] == cid_of("i1")
    update = {
        "type": "catalog-item",
        "id": cid_of("i1"),
        "attributes": {"title": "Renamed"},
        "relationships": {"categories": {"data": [{"type": "catalog-category", "id": cid_of("c2")}]}},
    }
    ghost = {"type": "catalog-item", "id": cid_of("ghost"), "attributes": {"title": "x"}}
    done = run_job(api, clock, "/api/catalog-item-bulk-update-jobs", catalog_job("item", "update", [update, ghost]))
    assert (done["completed_count"], done["failed_count"]) == (1, 1)
    assert api.get(f"/api/catalog-items/{cid_of('i1')}")["data"]["attributes"]["title"] == "Renamed"
    assert [c["id"] for c in api.get(f"/api/catalog-categories/{cid_of('c1')}/relationships/items")["data"]] == []
    assert [c["id"] for c in api.get(f"/api/catalog-categories/{cid_of('c2')}/relationships/items")["data"]] == [
        cid_of("i1")
    ]
    delete = [{"type": "catalog-item", "id": cid_of("i1")}]
    done = run_job(api, clock, "/api/catalog-item-bulk-delete-jobs", catalog_job("item", "delete", delete))
    assert done["completed_count"] == 1
    assert api.call("GET", f"/api/catalog-items/{cid_of('i1')}").status_code == 404
    assert api.call("GET", f"/api/catalog-variants/{cid_of('i1-s')}").status_code == 404


def test_catalog_job_limits(api: Client, emu: Emulator) -> None:
    rows = [item_row(f"n{i}", []) for i in range(101)]
    r = api.post("/api/catalog-item-bulk-create-jobs", catalog_job("item", "create", rows))
    assert r.status_code == 400 and "100" in detail(r)
    bad = catalog_job("item", "create", [{"type": "catalog-item", "attributes": {"title": "no external id"}}])
    assert api.post("/api/catalog-item-bulk-create-jobs", bad).status_code == 400
    emu.bulk.max_in_progress = 2  # Klaviyo's 500, lowered so the test sends three jobs, not 501
    one = catalog_job("item", "create", rows[:1])
    assert [api.post("/api/catalog-item-bulk-create-jobs", one).status_code for _ in range(2)] == [202, 202]
    r = api.post("/api/catalog-category-bulk-delete-jobs", catalog_job("category", "delete", []))
    assert r.status_code == 429 and "in progress" in detail(r)


# ---- suppressions --------------------------------------------------------------------------------


def suppression_job(action: str, emails: list[str]) -> dict[str, Any]:
    rows = [{"type": "profile", "attributes": {"email": e}} for e in emails]
    return {"data": {"type": f"profile-suppression-bulk-{action}-job", "attributes": {"profiles": {"data": rows}}}}


def suppressions(api: Client, email: str) -> list[dict[str, Any]]:
    doc = api.get("/api/profiles", filter=f'equals(email,"{email}")', **{"additional-fields[profile]": "subscriptions"})
    assert len(doc["data"]) == 1
    return list(doc["data"][0]["attributes"]["subscriptions"]["email"]["marketing"]["suppression"])


def test_suppression_jobs_and_global_exclusion_read(api: Client, emu: Emulator, clock: FakeClock) -> None:
    profiles = emu.account.store["profile"].values()
    clean = next(
        p for p in profiles if p.attrs["email"] and not p.attrs["subscriptions"]["email"]["marketing"]["suppression"]
    )
    bounced = next(  # suppressed by Klaviyo (an invalid email or a bounce), not by a user
        p
        for p in profiles
        if [s["reason"] for s in p.attrs["subscriptions"]["email"]["marketing"]["suppression"]] == ["HARD_BOUNCE"]
    )
    emails = [clean.attrs["email"], "new.person@example.com", "not-an-email", bounced.attrs["email"]]
    path = "/api/profile-suppression-bulk-create-jobs"
    done = run_job(api, clock, path, suppression_job("create", emails))
    assert (done["total_count"], done["completed_count"], done["skipped_count"]) == (4, 2, 2)
    assert [s["reason"] for s in suppressions(api, clean.attrs["email"])] == ["USER_SUPPRESSED"]
    assert [s["reason"] for s in suppressions(api, "new.person@example.com")] == ["USER_SUPPRESSED"]
    excluded = api.ids(
        "/api/profiles",
        filter="greater-than(subscriptions.email.marketing.suppression.timestamp,2010-01-01T00:00:00Z)",
        **{"additional-fields[profile]": "subscriptions"},
    )
    assert clean.id in excluded
    path = "/api/profile-suppression-bulk-delete-jobs"
    done = run_job(api, clock, path, suppression_job("delete", [clean.attrs["email"], bounced.attrs["email"]]))
    assert (done["completed_count"], done["skipped_count"]) == (1, 1), "a hard bounce stays suppressed"
    assert suppressions(api, clean.attrs["email"]) == []
    assert [s["reason"] for s in suppressions(api, bounced.attrs["email"])] == ["HARD_BOUNCE"]
    r = api.post(path, suppression_job("delete", [f"p{i}@example.com" for i in range(101)]))
    assert r.status_code == 400


def test_suppress_a_list_and_either_emails_or_a_group(api: Client, emu: Emulator, clock: FakeClock) -> None:
    lid = next(gid for gid, members in emu.account.members["list"].items() if members)
    body = {
        "data": {
            "type": "profile-suppression-bulk-create-job",
            "attributes": {},
            "relationships": {"list": {"data": {"type": "list", "id": lid}}},
        }
    }
    members = [emu.account.store["profile"][pid] for pid in emu.account.list_members(lid)]
    without_email = sum(1 for p in members if not p.attrs.get("email"))
    already = sum(1 for p in members if p.attrs["subscriptions"]["email"]["marketing"]["suppression"])
    done = run_job(api, clock, "/api/profile-suppression-bulk-create-jobs", body)
    assert done["total_count"] == len(members)
    assert (done["completed_count"], done["skipped_count"]) == (
        len(members) - without_email - already,
        without_email + already,
    )
    both = suppression_job("create", ["a@example.com"])
    both["data"]["relationships"] = body["data"]["relationships"]
    assert api.post("/api/profile-suppression-bulk-create-jobs", both).status_code == 400


# ---- the tap reads it back -----------------------------------------------------------------------


def test_tap_catalog_item_carries_its_category_ids(api: Client, emu: Emulator, clock: FakeClock) -> None:
    """Items written with categories come back from the tap with `category_ids` (read per category)."""
    cats = [{"type": "catalog-category", "attributes": {"external_id": f"k{i}", "name": f"K{i}"}} for i in (1, 2)]
    run_job(api, clock, "/api/catalog-category-bulk-create-jobs", catalog_job("category", "create", cats))
    rows = [item_row("two", [cid_of("k1"), cid_of("k2")]), item_row("none", [])]
    run_job(api, clock, "/api/catalog-item-bulk-create-jobs", catalog_job("item", "create", rows))
    config = {"api_key": DEMO_API_KEY, "api_url": emu.base_url}
    result = run_tap(config, catalog=select_only(config, {"catalog_item"}))
    by_id = {r["id"]: r for r in result.records["catalog_item"]}
    assert by_id.keys() == set(emu.account.store["catalog-item"])
    assert by_id[cid_of("two")]["category_ids"] == [cid_of("k1"), cid_of("k2")]
    assert by_id[cid_of("none")]["category_ids"] == []
    for item in emu.account.store["catalog-item"].values():
        assert by_id[item.id]["category_ids"] == item.rels["categories"]
    assert "category_ids" in result.schemas["catalog_item"]["properties"]


def test_tap_reads_a_new_suppression_as_a_global_exclusion(api: Client, emu: Emulator, clock: FakeClock) -> None:
    run_job(api, clock, "/api/profile-suppression-bulk-create-jobs", suppression_job("create", ["gone@example.com"]))
    config = {"api_key": DEMO_API_KEY, "api_url": emu.base_url}
    result = run_tap(config, catalog=select_only(config, {"global_exclusion"}))
    rows = {r["email"]: r for r in result.records["global_exclusion"]}
    assert rows["gone@example.com"]["reason"] == "USER_SUPPRESSED"
    suppressed = {
        p.id
        for p in emu.account.store["profile"].values()
        if p.attrs["subscriptions"]["email"]["marketing"]["suppression"]
    }
    assert {r["profile_id"] for r in rows.values()} == suppressed


def test_an_empty_account_takes_every_object(clock: FakeClock) -> None:
    """What target-klaviyo writes into: an account with nothing but itself."""
    config = EmulatorConfig(empty=True, rate_limit_scale=0.0, job_delay_s=DELAY)
    with Emulator(config, clock=clock.monotonic) as emu:
        api = Client(emu)
        lid = api.post("/api/lists", {"data": {"type": "list", "attributes": {"name": "L"}}}).json()["data"]["id"]
        assert api.post("/api/templates", template_body("T")).status_code == 201
        r = api.post("/api/segments", segment_body("S", [member_of(lid)]))
        assert r.status_code == 201, r.text
        assert api.post("/api/segments", segment_body("S2", [metric_condition("none")])).status_code == 400
        assert api.post("/api/campaigns", campaign_body("C", [lid])).status_code == 201
        cats = [{"type": "catalog-category", "attributes": {"external_id": "c", "name": "C"}}]
        run_job(api, clock, "/api/catalog-category-bulk-create-jobs", catalog_job("category", "create", cats))
        job = {
            "data": {
                "type": "profile-suppression-bulk-create-job",
                "attributes": {},
                "relationships": {"list": {"data": {"type": "list", "id": lid}}},
            }
        }
        done = run_job(api, clock, "/api/profile-suppression-bulk-create-jobs", job)
        assert done["total_count"] == 0
        counts = {path: len(api.ids(path)) for path in ("/api/lists", "/api/templates", "/api/segments")}
        assert counts == {"/api/lists": 1, "/api/templates": 1, "/api/segments": 1}
        assert len(api.ids("/api/catalog-categories")) == 1
        assert len(api.ids("/api/campaigns", filter="equals(messages.channel,'email')")) == 1


def test_validate_request_checks_patch_bodies() -> None:
    """The contract check a test runs over a request log sees PATCH bodies as the server does."""
    good = '{"data":{"type":"image","id":"1","attributes":{"hidden":true}}}'
    assert validate_request("PATCH", "/api/images/1", [], HEADERS, good) == []
    bad = '{"data":{"type":"image","id":"1","attributes":{"hidden":"yes"}}}'
    assert any("hidden" in p for p in validate_request("PATCH", "/api/images/1", [], HEADERS, bad))
