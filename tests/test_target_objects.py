"""target-klaviyo writing the objects a team manages (templates, images, lists, suppressions, catalog) into
the emulator, matched by key: created once, a re-run sends no write, deletions only with allow_deletes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from klaviyo_emulator import DEMO_API_KEY, Emulator, EmulatorConfig
from klaviyo_emulator.ratelimit import RateLimiter
from target_klaviyo.sinks.image import ImageSink
from target_klaviyo.sinks.segment import SegmentSink
from target_klaviyo.writing.campaign_parts import ORPHAN
from target_klaviyo.writing.mirror import NOT_DELETED
from tests.fake_clock import FakeClock
from tests.harness import SyncResult, run_tap, select_only
from tests.target_harness import LIST_MEMBER_SCHEMA, TargetResult, messages, run_target
from tests.test_target import config, empty

DELETED = {"_sdc_deleted_at": "2025-01-01T00:00:00Z"}
DELETES_OFF = "deleting needs the allow_deletes setting: nothing was deleted"


def schema(stream: str) -> dict[str, Any]:
    return json.loads(Path(f"tap_klaviyo/schemas/{stream}.json").read_text())


def writes(emu: Emulator, since: int = 0) -> list[tuple[str, str]]:
    """(method, path template) of every write the emulator saw after request number `since`."""
    return [(r.method, r.template or r.path) for r in emu.requests.snapshot()[since:] if r.method != "GET"]


def run_lines(emu: Emulator, clock: FakeClock, tmp: Path, lines: list[dict[str, Any]], **settings: Any) -> TargetResult:
    tmp.mkdir(parents=True, exist_ok=True)
    return run_target(config(emu, **{"max_rejects": 100, **settings}), lines, clock, tmp)


def run(
    emu: Emulator, clock: FakeClock, tmp: Path, stream: str, rows: list[dict[str, Any]], **settings: Any
) -> TargetResult:
    keys = ["profile_id"] if stream == "global_exclusion" else ["id"]
    return run_lines(emu, clock, tmp, messages(stream, schema(stream), rows, keys), **settings)


def reasons(result: TargetResult) -> list[str]:
    return sorted(r["reason"] for r in result.rejects)


def template(n: int, html: str = "<p>hi</p>") -> dict[str, Any]:
    return {"id": f"T{n}", "name": f"Template {n}", "editor_type": "CODE", "html": f"{html} {n}", "text": f"hi {n}"}


def test_templates_created_then_unchanged_updated_and_deleted(tmp_path: Path) -> None:
    clock = FakeClock()
    with empty(clock) as emu:
        rows = [template(n) for n in range(3)]
        bad = [{"id": "X", "html": "<p>no name</p>"}, {"id": "Y", "name": "No html"}]
        first = run(emu, clock, tmp_path / "1", "template", [*rows[:2], *bad, rows[2]])
        assert first.outcomes["template"] == {"created": 3, "rejected": 2}
        assert reasons(first) == [
            "no html: a template is written as a CODE template from its html",
            "no name: it is what the object is matched by in the target account",
        ]
        stored = {r.attrs["name"]: r.attrs for r in emu.account.records("template")}
        assert sorted(stored) == ["Template 0", "Template 1", "Template 2"]
        assert stored["Template 1"]["html"] == "<p>hi</p> 1" and stored["Template 1"]["editor_type"] == "CODE"

        seen = len(emu.requests.snapshot())
        again = run(emu, clock, tmp_path / "2", "template", rows)
        assert again.outcomes["template"] == {"unchanged": 3}
        assert writes(emu, seen) == []

        seen = len(emu.requests.snapshot())
        changed = run(emu, clock, tmp_path / "3", "template", [template(1, "<p>new</p>"), rows[0]])
        assert changed.outcomes["template"] == {"updated": 1, "unchanged": 1}
        assert writes(emu, seen) == [("PATCH", "/api/templates/{id}")]
        assert {r.attrs["name"]: r.attrs["html"] for r in emu.account.records("template")}[
            "Template 1"
        ] == "<p>new</p> 1"

        gone = [{**rows[2], **DELETED}]
        refused = run(emu, clock, tmp_path / "4", "template", gone)
        assert reasons(refused) == [DELETES_OFF] and len(emu.account.records("template")) == 3
        dry = run(emu, clock, tmp_path / "5", "template", gone, allow_deletes=True, dry_run=True)
        assert dry.summary == ["template: dry run, would have: 1 removed"] and len(emu.account.records("template")) == 3
        deleted = run(emu, clock, tmp_path / "6", "template", gone, allow_deletes=True)
        assert deleted.outcomes["template"] == {"removed": 1}
        assert sorted(r.attrs["name"] for r in emu.account.records("template")) == ["Template 0", "Template 1"]
        assert run(emu, clock, tmp_path / "7", "template", gone, allow_deletes=True).outcomes["template"] == {
            "unchanged": 1
        }


def image(n: int, **extra: Any) -> dict[str, Any]:
    return {"id": str(n), "name": f"banner-{n}.png", "image_url": f"https://cdn.example.com/b/{n}.png", **extra}


def test_images_are_looked_up_by_name_imported_once_and_hidden_to_delete(tmp_path: Path) -> None:
    clock = FakeClock()
    with empty(clock) as emu:
        rows = [image(n) for n in range(3)]
        first = run(emu, clock, tmp_path / "1", "image", [*rows, {"id": "9", "name": "no-url.png"}])
        assert first.outcomes["image"] == {"created": 3, "rejected": 1}
        assert reasons(first) == ["no image_url: an image is imported from its URL"]
        seen = len(emu.requests.snapshot())
        again = run(emu, clock, tmp_path / "2", "image", [*rows, image(3)])
        assert again.outcomes["image"] == {"unchanged": 3, "created": 1}
        assert writes(emu, seen) == [("POST", "/api/images")]
        names = sorted(r.attrs["name"] for r in emu.account.records("image"))
        assert names == [f"banner-{n}.png" for n in range(4)]  # no suffixed second copy

        hide = [{**rows[0], **DELETED}, image(1, hidden=True)]
        refused = run(emu, clock, tmp_path / "3", "image", hide)
        assert refused.outcomes["image"] == {"rejected": 1, "updated": 1} and reasons(refused) == [DELETES_OFF]
        allowed = run(emu, clock, tmp_path / "4", "image", hide, allow_deletes=True)
        assert allowed.outcomes["image"] == {"removed": 1, "unchanged": 1}
        hidden = {r.attrs["name"]: r.attrs["hidden"] for r in emu.account.records("image")}
        assert hidden == {"banner-0.png": True, "banner-1.png": True, "banner-2.png": False, "banner-3.png": False}
        seen = len(emu.requests.snapshot())
        assert run(emu, clock, tmp_path / "5", "image", hide, allow_deletes=True).outcomes["image"] == {"unchanged": 2}
        assert writes(emu, seen) == []


def test_list_rows_with_deleted_at_delete_the_list_only_when_allowed(tmp_path: Path) -> None:
    clock = FakeClock()
    with empty(clock) as emu:
        rows = [{"id": f"L{n}", "name": f"List {n}"} for n in range(3)]
        assert run(emu, clock, tmp_path / "1", "list", rows).outcomes["list"] == {"created": 3}
        gone = [{**rows[1], **DELETED}, {"id": "L9", "name": "Never made", **DELETED}]
        refused = run(emu, clock, tmp_path / "2", "list", gone)
        assert reasons(refused) == [DELETES_OFF, DELETES_OFF] and len(emu.account.records("list")) == 3
        seen = len(emu.requests.snapshot())
        deleted = run(emu, clock, tmp_path / "3", "list", gone, allow_deletes=True)
        assert deleted.outcomes["list"] == {"removed": 1, "unchanged": 1}
        assert writes(emu, seen) == [("DELETE", "/api/lists/{id}")]
        assert sorted(r.attrs["name"] for r in emu.account.records("list")) == ["List 0", "List 2"]


def cid(external_id: str) -> str:
    return f"$custom:::$default:::{external_id}"


def item(n: int, categories: list[str], price: float = 10.0) -> dict[str, Any]:
    return {
        "id": cid(f"I{n}"),
        "external_id": f"I{n}",
        "title": f"Item {n}",
        "description": "d",
        "url": f"https://shop.example/{n}",
        "price": price,
        "published": True,
        "category_ids": [cid(c) for c in categories],
    }


def variant(n: int, item_n: int) -> dict[str, Any]:
    return {
        "id": cid(f"V{n}"),
        "external_id": f"V{n}",
        "item_id": cid(f"I{item_n}"),
        "title": f"Variant {n}",
        "description": "d",
        "sku": f"V{n}",
        "inventory_quantity": 5,
        "price": 10.0,
        "url": f"https://shop.example/v{n}",
    }


def catalog_lines(items: list[dict[str, Any]], variants: list[dict[str, Any]], cats: list[dict[str, Any]]) -> Any:
    """Items and variants before the categories they name, as the tap emits them."""
    return [
        *messages("catalog_item", schema("catalog_item"), items, ["id"]),
        *messages("catalog_variant", schema("catalog_variant"), variants, ["id"]),
        *messages("catalog_category", schema("catalog_category"), cats, ["id"]),
        {"type": "STATE", "value": {"done": 1}},
    ]


def stored_catalog(emu: Emulator) -> dict[str, Any]:
    store = emu.account.store
    return {
        "categories": sorted(r.attrs["external_id"] for r in store.get("catalog-category", {}).values()),
        "items": {r.attrs["external_id"]: sorted(r.rels["categories"]) for r in store.get("catalog-item", {}).values()},
        "variants": {r.attrs["external_id"]: r.rels["item"] for r in store.get("catalog-variant", {}).values()},
    }


def test_catalog_keeps_its_links_rejects_bad_rows_and_reruns_without_writes(tmp_path: Path) -> None:
    clock = FakeClock()
    with empty(clock) as emu:
        cats = [{"id": cid(f"c{n}"), "external_id": f"c{n}", "name": f"Category {n}"} for n in range(3)]
        items = [item(n, [f"c{n % 3}", "c2"] if n else []) for n in range(5)]
        bad_items = [{**item(8, []), "external_id": None}, item(9, ["nowhere"])]
        variants = [variant(n, n // 2) for n in range(8)]
        bad_variants = [variant(90, 77)]
        lines = catalog_lines([*items, *bad_items], [*variants, *bad_variants], cats)
        first = run_lines(emu, clock, tmp_path / "1", lines, max_rejects=10)
        assert first.error is None and first.states == [{"done": 1}]
        assert first.outcomes == {
            "catalog_category": {"created": 3},
            "catalog_item": {"created": 5, "rejected": 2},
            "catalog_variant": {"created": 8, "rejected": 1},
        }
        assert reasons(first) == [
            "catalog category 'nowhere' is not in the target account (nor written by this run)",
            "catalog item 'I77' is not in the target account (nor written by this run)",
            "no external_id: it is what the object is matched by in the target account",
        ]
        got = stored_catalog(emu)
        assert got["categories"] == ["c0", "c1", "c2"]
        assert got["items"] == {
            "I0": [],
            **{f"I{n}": sorted({cid(f"c{n % 3}"), cid("c2")}) for n in range(1, 5)},
        }
        assert got["variants"] == {f"V{n}": cid(f"I{n // 2}") for n in range(8)}

        seen = len(emu.requests.snapshot())
        again = run_lines(emu, clock, tmp_path / "2", catalog_lines(items, variants, cats))
        assert again.outcomes == {
            "catalog_category": {"unchanged": 3},
            "catalog_item": {"unchanged": 5},
            "catalog_variant": {"unchanged": 8},
        }
        assert writes(emu, seen) == []

        seen = len(emu.requests.snapshot())
        changed = [item(1, ["c0"], price=12.5), items[2]]
        result = run_lines(emu, clock, tmp_path / "3", catalog_lines(changed, [], []))
        assert result.outcomes == {"catalog_item": {"updated": 1, "unchanged": 1}}
        assert writes(emu, seen) == [("POST", "/api/catalog-item-bulk-update-jobs")]
        updated = emu.account.store["catalog-item"][cid("I1")]
        assert updated.attrs["price"] == 12.5 and updated.rels["categories"] == [cid("c0")]

        gone = [{**variants[0], **DELETED}, {**cats[1], **DELETED}]
        lines = catalog_lines([], gone[:1], gone[1:])
        refused = run_lines(emu, clock, tmp_path / "4", lines, max_rejects=10)
        assert reasons(refused) == [DELETES_OFF, DELETES_OFF]
        seen = len(emu.requests.snapshot())
        deleted = run_lines(emu, clock, tmp_path / "5", lines, allow_deletes=True)
        assert deleted.outcomes == {"catalog_category": {"removed": 1}, "catalog_variant": {"removed": 1}}
        assert sorted(writes(emu, seen)) == [
            ("POST", "/api/catalog-category-bulk-delete-jobs"),
            ("POST", "/api/catalog-variant-bulk-delete-jobs"),
        ]
        got = stored_catalog(emu)
        assert got["categories"] == ["c0", "c2"] and "V0" not in got["variants"]


def test_global_exclusions_suppress_and_unsuppress_by_email(tmp_path: Path) -> None:
    clock = FakeClock()
    with empty(clock) as emu:
        rows = [{"profile_id": f"P{n}", "email": f"gone{n}@example.com", "reason": "USER_SUPPRESSED"} for n in range(3)]
        first = run(emu, clock, tmp_path / "1", "global_exclusion", [*rows, {"profile_id": "X", "email": "nope"}])
        assert first.outcomes["global_exclusion"] == {"created": 3, "rejected": 1}
        assert reasons(first) == ["email 'nope' is not a valid address"]

        def suppressed() -> list[str]:
            return sorted(
                p.attrs["email"]
                for p in emu.account.records("profile")
                if p.attrs["subscriptions"]["email"]["marketing"]["suppression"]
            )

        assert suppressed() == [f"gone{n}@example.com" for n in range(3)]
        seen = len(emu.requests.snapshot())
        assert run(emu, clock, tmp_path / "2", "global_exclusion", rows).outcomes["global_exclusion"] == {
            "unchanged": 3
        }
        assert writes(emu, seen) == []
        back = [{**rows[0], **DELETED}]
        assert reasons(run(emu, clock, tmp_path / "3", "global_exclusion", back)) == [DELETES_OFF]
        removed = run(emu, clock, tmp_path / "4", "global_exclusion", back, allow_deletes=True)
        assert removed.outcomes["global_exclusion"] == {"removed": 1}
        assert suppressed() == ["gone1@example.com", "gone2@example.com"]


# ---- round trip: the demo account's objects copied into an empty one --------------------------------------

#: In the tap's order where it matters: messages before their campaigns, items and variants before the
#: categories they name, segments before the lists they name, metrics last.
COPIED = (
    "template",
    "image",
    "catalog_item",
    "catalog_variant",
    "catalog_category",
    "global_exclusion",
    "campaign_messages",
    "campaign_message_template",
    "campaign",
    "segment",
    "list",
    "metric",
)
KEYS = {"global_exclusion": ["profile_id"]}


def read_objects(emu: Emulator) -> SyncResult:
    settings = {"api_key": DEMO_API_KEY, "api_url": emu.base_url}
    return run_tap(settings, catalog=select_only(settings, set(COPIED)))


def as_lines(source: SyncResult) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for stream in COPIED:
        out.extend(messages(stream, source.schemas[stream], source.records[stream], KEYS.get(stream, ["id"])))
    return [*out, {"type": "STATE", "value": {"bookmarks": {"copied": True}}}]


def by_key(result: SyncResult) -> dict[str, Counter[Any]]:
    """Each stream's objects by their keys and what is copied, without the account's ids."""
    records = result.records
    category = {row["id"]: row["external_id"] for row in records["catalog_category"]}
    item = {row["id"]: row["external_id"] for row in records["catalog_item"]}
    names = {row["id"]: row["name"] for kind in ("list", "segment", "metric") for row in records[kind]}

    def named(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: ([names[g] for g in v] if k == "group_ids" else names[v] if k == "metric_id" else named(v))
                for k, v in node.items()
            }
        return [named(n) for n in node] if isinstance(node, list) else node

    templates = {row["campaign_message_id"]: (row["name"], row["html"]) for row in records["campaign_message_template"]}
    images = {row["id"]: row["name"] for row in records["image"]}
    by_campaign: dict[str, list[Any]] = {}
    for m in records["campaign_messages"]:
        label = (m["definition"].get("label"), json.dumps(m["definition"].get("content"), sort_keys=True))
        image = images.get(m["image_id"]) if m.get("image_id") else None
        by_campaign.setdefault(m["campaign_id"], []).append((*label, templates.get(m["id"]), image))
    return {
        "template": Counter((r["name"], r["html"], r["text"]) for r in records["template"]),
        "image": Counter((r["name"], r["hidden"]) for r in records["image"]),
        "catalog_category": Counter((r["external_id"], r["name"]) for r in records["catalog_category"]),
        "catalog_item": Counter(
            (r["external_id"], r["title"], r["price"], tuple(sorted(category[c] for c in r["category_ids"])))
            for r in records["catalog_item"]
        ),
        "catalog_variant": Counter(
            (r["external_id"], r["sku"], r["price"], r["inventory_quantity"], item[r["item_id"]])
            for r in records["catalog_variant"]
        ),
        "global_exclusion": Counter(r["email"] for r in records["global_exclusion"] if r["email"]),
        "list": Counter(r["name"] for r in records["list"]),
        "segment": Counter(
            (r["name"], json.dumps(named(r["definition"]), sort_keys=True), r["is_starred"]) for r in records["segment"]
        ),
        "campaign": Counter(
            (
                r["name"],
                tuple(names[g] for g in r["audiences"]["included"]),
                tuple(sorted(by_campaign.get(r["id"], []))),
            )
            for r in records["campaign"]
        ),
    }


@pytest.fixture(scope="module")
def demo_objects() -> SyncResult:
    with Emulator(EmulatorConfig(size="demo", rate_limit_scale=0.0)) as demo:
        return read_objects(demo)


def copy_into(emu: Emulator, clock: FakeClock, tmp: Path, source: SyncResult) -> tuple[TargetResult, Counter[str]]:
    """The demo account's objects written into `emu` (its metrics first: Klaviyo makes them from events): the
    run, and the requests it made by endpoint."""
    events = [
        {"metric_name": m["name"], "datetime": "2025-01-01T00:00:00+00:00", "profile": {"email": "first@ex.co"}}
        for m in source.records["metric"]
    ]
    run_lines(emu, clock, tmp / "events", messages("event", {"type": "object", "properties": {}}, events, []))
    clock.sleep(10)
    emu.writes.settle()
    start = len(emu.requests.snapshot())
    result = run_lines(emu, clock, tmp, as_lines(source), max_rejects=len(without_email(source)))
    clock.sleep(10)
    return result, Counter(f"{r.method} {r.template or r.path}" for r in emu.requests.snapshot()[start:])


NO_EMAIL = "no email: a suppression is matched and written by its email"


def without_email(source: SyncResult) -> list[dict[str, Any]]:
    return [row for row in source.records["global_exclusion"] if not row["email"]]


def test_round_trip_copies_the_objects_and_a_rerun_writes_nothing(demo_objects: SyncResult, tmp_path: Path) -> None:
    source = demo_objects
    clock = FakeClock()
    with empty(clock) as emu:
        first, spent = copy_into(emu, clock, tmp_path / "1", source)
        no_email = without_email(source)
        assert first.error is None and len(no_email) > 0
        assert first.rejects == [
            {
                "stream": "global_exclusion",
                "row": row,
                "reason": "no email: a suppression is matched and written by its email",
            }
            for row in no_email
        ]
        assert first.states == [{"bookmarks": {"copied": True}}]
        copy = read_objects(emu)
        want, got = by_key(source), by_key(copy)
        for stream in want:
            assert got[stream] == want[stream], stream
        assert {r["status"] for r in copy.records["campaign"]} == {"Draft"}
        assert {r["status"] for r in source.records["campaign"]} != {"Draft"}
        assert sum(1 for m in copy.records["campaign_messages"] if m.get("image_id")) > 0
        for stream in ("template", "image", "catalog_item", "catalog_variant", "segment", "campaign"):
            assert first.outcomes[stream] == {"created": len(source.records[stream])}, stream
        seen = len(emu.requests.snapshot())
        second = run_lines(emu, clock, tmp_path / "2", as_lines(source), max_rejects=len(no_email))
        assert writes(emu, seen) == []
        assert {stream: set(counts) - {"rejected"} for stream, counts in second.outcomes.items()} == {
            s: {"unchanged"} for s in COPIED
        }
        assert emu.campaigns.send_job_calls == []
        print(
            "objects round trip",
            {stream: sum(counts.values()) for stream, counts in got.items()},
            "requests",
            first.requests,
            second.requests,
            dict(spent.most_common()),
        )


def test_round_trip_converges_through_faults_and_limits_at_a_fifth(demo_objects: SyncResult, tmp_path: Path) -> None:
    """5 % of requests fail (half of the failed writes applied first: ambiguous), limits at a fifth (daily caps
    off: retries of failed creations would spend them): the copy is complete, with no object twice."""
    clock = FakeClock()
    settings = EmulatorConfig(
        empty=True,
        rate_limit_scale=0.2,
        job_delay_s=3.0,
        fault_rate=0.05,
        timeout_delay_s=0.5,
        seed=11,
        daily_limits=False,
    )
    with Emulator(settings, clock=clock.monotonic) as emu:
        emu.limiter = RateLimiter(clock=lambda: MIDNIGHT + 60 + clock.monotonic())
        first, _spent = copy_into(emu, clock, tmp_path / "1", demo_objects)
        failed = [r for r in emu.requests.snapshot() if r.fault]
        emu.config.fault_rate, emu.config.rate_limit_scale = 0.0, 0.0  # the tap reads back in real time
        copy = read_objects(emu)
        assert failed
        want, got = by_key(demo_objects), by_key(copy)
        for stream in want:
            assert got[stream] == want[stream], stream
        assert emu.campaigns.send_job_calls == []
        print("faults", len(failed), "requests", first.requests, first.error, first.outcomes)


def member_of(*group_ids: str) -> dict[str, Any]:
    return {
        "condition_groups": [
            {"conditions": [{"type": "profile-group-membership", "is_member": True, "group_ids": list(group_ids)}]}
        ]
    }


def bought(metric_id: str) -> dict[str, Any]:
    condition = {
        "type": "profile-metric",
        "metric_id": metric_id,
        "measurement": "count",
        "measurement_filter": {"type": "numeric", "operator": "greater-than", "value": 0},
        "timeframe_filter": {"type": "date", "operator": "in-the-last", "unit": "day", "quantity": 90},
    }
    return {"condition_groups": [{"conditions": [condition]}]}


def segment_lines(segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Segments before the lists and metrics they name (the tap reads metrics last)."""
    lists = [{"id": "srcL1", "name": "VIP"}, {"id": "srcL2", "name": "Newsletter"}]
    metrics = [{"id": "srcM1", "name": "Placed Order"}]
    return [
        *messages("segment", schema("segment"), segments, ["id"]),
        *messages("list", schema("list"), lists, ["id"]),
        *messages("metric", schema("metric"), metrics, ["id"]),
        {"type": "STATE", "value": {"segments": 1}},
    ]


def stored_segments(emu: Emulator) -> dict[str, Any]:
    lists = {r.id: r.attrs["name"] for r in emu.account.records("list")}
    segments = {r.id: r.attrs["name"] for r in emu.account.records("segment")}
    metrics = {r.id: r.attrs["name"] for r in emu.account.records("metric")}
    names = {**lists, **segments, **metrics}

    def named(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: ([names[g] for g in v] if k == "group_ids" else names[v] if k == "metric_id" else named(v))
                for k, v in node.items()
            }
        return [named(n) for n in node] if isinstance(node, list) else node

    return {
        r.attrs["name"]: (named(r.attrs["definition"]), r.attrs["is_starred"]) for r in emu.account.records("segment")
    }


def test_segments_translate_their_definitions_through_names(tmp_path: Path) -> None:
    clock = FakeClock()
    with empty(clock) as emu:
        good: list[dict[str, Any]] = [
            {"id": "srcS3", "name": "Of a segment", "definition": member_of("srcS1")},  # names a later row
            {"id": "srcS1", "name": "VIPs", "definition": member_of("srcL1")},
            {"id": "srcS2", "name": "VIPs or news", "definition": member_of("srcL1", "srcL2"), "is_starred": True},
        ]
        bad: list[dict[str, Any]] = [
            {"id": "srcS4", "name": "Buyers", "definition": bought("srcM1")},
            {"id": "srcS5", "name": "Ghosts", "definition": member_of("srcL9")},
            {"id": "srcS6", "definition": member_of("srcL1")},
        ]
        first = run_lines(emu, clock, tmp_path / "1", segment_lines([*good, *bad]))
        assert first.error is None and first.states == [{"segments": 1}]
        assert first.outcomes == {
            "segment": {"created": 3, "rejected": 3},
            "list": {"created": 2},
            "metric": {"unchanged": 1},
        }
        assert reasons(first) == [
            "cannot translate a reference: list or segment srcL9 is not named by the input's list or segment rows",
            "cannot translate a reference: metric 'Placed Order' is not in the target account (it has no such "
            "event yet)",
            "no name: it is what the object is matched by in the target account",
        ]
        assert stored_segments(emu) == {
            "VIPs": (member_of("VIP"), False),
            "VIPs or news": (member_of("VIP", "Newsletter"), True),
            "Of a segment": (member_of("VIPs"), False),
        }

        seen = len(emu.requests.snapshot())
        again = run_lines(emu, clock, tmp_path / "2", segment_lines(good))
        assert again.outcomes["segment"] == {"unchanged": 3}
        assert writes(emu, seen) == []

        # Once the target account has the metric (an event made it), the segment naming it is created.
        event = {"metric_name": "Placed Order", "datetime": "2025-01-01T00:00:00+00:00", "profile": {"email": "a@b.co"}}
        run_lines(emu, clock, tmp_path / "3", messages("event", {"type": "object", "properties": {}}, [event], []))
        clock.sleep(10)
        emu.writes.settle()
        starred = {**good[2], "is_starred": False}
        third = run_lines(emu, clock, tmp_path / "4", segment_lines([good[0], good[1], starred, bad[0]]))
        assert third.outcomes["segment"] == {"unchanged": 2, "updated": 1, "created": 1}
        assert stored_segments(emu)["Buyers"] == (bought("Placed Order"), False)
        assert stored_segments(emu)["VIPs or news"][1] is False

        gone = [{**good[2], **DELETED}]
        assert reasons(run_lines(emu, clock, tmp_path / "5", segment_lines(gone))) == [DELETES_OFF]
        deleted = run_lines(emu, clock, tmp_path / "6", segment_lines(gone), allow_deletes=True)
        assert deleted.outcomes["segment"] == {"removed": 1}
        assert "VIPs or news" not in stored_segments(emu)


def campaign(n: int, *included: str) -> dict[str, Any]:
    return {
        "id": f"srcC{n}",
        "name": f"Campaign {n}",
        "status": "Sent",
        "channel": "email",
        "audiences": {"included": list(included), "excluded": []},
        "send_options": {"use_smart_sending": True},
        "tracking_options": {"add_tracking_params": False, "is_tracking_clicks": True, "is_tracking_opens": True},
        "send_strategy": {"method": "immediate"},
    }


def message(n: int, campaign_n: int) -> dict[str, Any]:
    content = {"subject": f"Subject {n}", "preview_text": "p", "from_email": "shop@example.com", "from_label": "Shop"}
    return {
        "id": f"srcM{n}",
        "campaign_id": f"srcC{campaign_n}",
        "template_id": f"srcT{n}",
        "definition": {"channel": "email", "label": f"Message {n}", "content": content},
    }


def message_template(n: int) -> dict[str, Any]:
    return {"id": f"srcT{n}", "campaign_message_id": f"srcM{n}", "name": f"T{n}", "html": f"<p>{n}</p>", "text": "t"}


def campaign_lines(campaigns: list[dict[str, Any]], messages_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages and their templates first, then campaigns, then the lists they name (the tap's order)."""
    templates = [message_template(int(m["id"][4:])) for m in messages_rows]
    lists = [{"id": "srcL1", "name": "VIP"}, {"id": "srcL2", "name": "Newsletter"}]
    return [
        *messages("campaign_messages", schema("campaign_messages"), messages_rows, ["id"]),
        *messages("campaign_message_template", schema("campaign_message_template"), templates, ["id"]),
        *messages("campaign", schema("campaign"), campaigns, ["id"]),
        *messages("list", schema("list"), lists, ["id"]),
        {"type": "STATE", "value": {"campaigns": 1}},
    ]


def stored_campaigns(emu: Emulator) -> dict[str, Any]:
    store = emu.account.store
    lists = {r.id: r.attrs["name"] for r in emu.account.records("list")}
    out = {}
    for rec in store.get("campaign", {}).values():
        msgs = [store["campaign-message"][mid] for mid in rec.rels["campaign-messages"]]
        out[rec.attrs["name"]] = (
            rec.attrs["status"],
            [lists[g] for g in rec.attrs["audiences"]["included"]],
            [(m.attrs["label"], store["template"][m.rels["template"]].attrs["html"]) for m in msgs],
        )
    return out


def test_campaigns_are_drafts_with_messages_never_sent_and_sent_ones_never_touched(tmp_path: Path) -> None:
    clock = FakeClock()
    with empty(clock) as emu:
        good = [campaign(1, "srcL1"), campaign(2, "srcL1", "srcL2")]
        msgs = [message(1, 1), message(2, 1), message(3, 2)]
        bad = [campaign(4, "srcL9"), {**campaign(5, "srcL1"), "name": None}]
        first = run_lines(emu, clock, tmp_path / "1", campaign_lines([*good, *bad], [*msgs, message(4, 4)]))
        assert first.error is None and first.states == [{"campaigns": 1}]
        assert first.outcomes == {
            "campaign": {"created": 2, "rejected": 2},
            "campaign_messages": {"created": 3, "rejected": 1},
            "campaign_message_template": {"created": 3, "rejected": 1},
            "list": {"created": 2},
        }
        assert sorted(set(reasons(first))) == [
            "cannot translate a reference: list or segment srcL9 is not named by the input's list or segment rows",
            "its campaign 'Campaign 4' was not written: cannot translate a reference: list or segment srcL9 is "
            "not named by the input's list or segment rows",
            "no name: it is what the object is matched by in the target account",
        ]
        assert stored_campaigns(emu) == {
            "Campaign 1": ("Draft", ["VIP"], [("Message 1", "<p>1</p>"), ("Message 2", "<p>2</p>")]),
            "Campaign 2": ("Draft", ["VIP", "Newsletter"], [("Message 3", "<p>3</p>")]),
        }
        listed = [r for r in emu.account.store["template"].values() if r.extra.get("listed", True)]
        assert listed == []  # the templates made to assign from are gone; each message keeps its copy

        seen = len(emu.requests.snapshot())
        again = run_lines(emu, clock, tmp_path / "2", campaign_lines(good, msgs))
        assert again.outcomes["campaign"] == {"unchanged": 2}
        assert writes(emu, seen) == []

        # A campaign of the target account that was sent is never touched, whatever the row says.
        sent = next(r for r in emu.account.store["campaign"].values() if r.attrs["name"] == "Campaign 2")
        sent.attrs["status"] = "Sent"
        changed = [{**good[0], "send_options": {"use_smart_sending": False}}, {**good[1], "send_options": {}}]
        seen = len(emu.requests.snapshot())
        third = run_lines(emu, clock, tmp_path / "3", campaign_lines(changed, msgs))
        assert third.outcomes["campaign"] == {"updated": 1, "rejected": 1}
        assert "the target account's campaign 'Campaign 2' is not a draft (Sent): it is never touched" in reasons(third)
        assert writes(emu, seen) == [("PATCH", "/api/campaigns/{id}")]

        gone = [{**good[0], **DELETED}, {**good[1], **DELETED}]
        refused = run_lines(emu, clock, tmp_path / "4", campaign_lines(gone, []))
        assert reasons(refused) == [DELETES_OFF, DELETES_OFF]
        deleted = run_lines(emu, clock, tmp_path / "5", campaign_lines(gone, []), allow_deletes=True)
        assert deleted.outcomes["campaign"] == {"removed": 1, "rejected": 1}
        assert list(stored_campaigns(emu)) == ["Campaign 2"]
        assert emu.campaigns.send_job_calls == []
        assert not [r for r in emu.requests.snapshot() if r.path.startswith("/api/campaign-send-jobs")]


def test_messages_without_a_campaign_stream_are_rejected_and_the_run_ends(tmp_path: Path) -> None:
    clock = FakeClock()
    with empty(clock) as emu:
        lines = campaign_lines([], [message(1, 1)])
        result = run_lines(emu, clock, tmp_path / "1", [line for line in lines if line.get("stream") != "campaign"])
        assert result.error is None and result.states == [{"campaigns": 1}]
        assert result.outcomes["campaign_messages"] == {"rejected": 1}
        assert result.outcomes["campaign_message_template"] == {"rejected": 1}
        assert set(reasons(result)) == {ORPHAN}
        assert [w for w in writes(emu) if "campaign" in w[1]] == []


def versioned(stream: str, rows: list[dict[str, Any]], version: int, activate_first: bool) -> list[dict[str, Any]]:
    """A full read's records stamped with a table version, ACTIVATE_VERSION before (singer-sdk taps) or after
    them (tap-klaviyo)."""
    head, *records = messages(stream, schema(stream), rows, ["id"])
    stamped = [{**record, "version": version} for record in records]
    activate = {"type": "ACTIVATE_VERSION", "stream": stream, "version": version}
    body = [activate, *stamped] if activate_first else [*stamped, activate]
    return [head, *body, {"type": "STATE", "value": {"version": version}}]


def test_activate_version_mirrors_only_with_allow_deletes_and_only_when_the_version_is_complete(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    with empty(clock) as emu:
        rows = [template(n) for n in range(4)]
        cats = [{"id": cid(f"c{n}"), "external_id": f"c{n}", "name": f"Category {n}"} for n in range(3)]
        run(emu, clock, tmp_path / "0", "template", rows)
        run(emu, clock, tmp_path / "1", "catalog_category", cats)
        kept = rows[:2]

        seen = len(emu.requests.snapshot())
        off = run_lines(emu, clock, tmp_path / "2", versioned("template", kept, 7, activate_first=False))
        assert off.outcomes["template"] == {"unchanged": 2, "not deleted (allow_deletes off)": 2}
        assert "template: 2 unchanged, 2 not deleted (allow_deletes off)" in off.summary
        assert writes(emu, seen) == [] and len(emu.account.records("template")) == 4

        dry = run_lines(
            emu, clock, tmp_path / "3", versioned("template", kept, 8, False), allow_deletes=True, dry_run=True
        )
        assert dry.outcomes["template"] == {"unchanged": 2, "removed": 2} and len(emu.account.records("template")) == 4

        # ACTIVATE_VERSION first (a singer-sdk tap): acting on arrival would delete every template.
        on = run_lines(
            emu, clock, tmp_path / "4", versioned("template", kept, 9, activate_first=True), allow_deletes=True
        )
        assert on.outcomes["template"] == {"unchanged": 2, "removed": 2}
        assert sorted(r.attrs["name"] for r in emu.account.records("template")) == ["Template 0", "Template 1"]

        lines = versioned("catalog_category", cats[1:], 3, activate_first=False)
        mirrored = run_lines(emu, clock, tmp_path / "5", lines, allow_deletes=True)
        assert mirrored.outcomes["catalog_category"] == {"unchanged": 2, "removed": 1}
        assert stored_catalog(emu)["categories"] == ["c1", "c2"]
        assert mirrored.states == [{"version": 3}]


#: A UTC midnight: the emulator's daily windows start here, whatever today's date is.
MIDNIGHT = 1_800_000_000 - 1_800_000_000 % 86_400


def test_daily_caps_reject_the_rows_past_them_and_the_run_goes_on(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = EmulatorConfig(empty=True, rate_limit_scale=1.0, job_delay_s=3.0, template_cap=3)
    with Emulator(settings, clock=clock.monotonic) as emu:
        emu.limiter = RateLimiter(clock=lambda: MIDNIGHT + 60 + clock.monotonic())
        images = [image(n) for n in range(103)]
        lines = [
            *messages("image", schema("image"), images, ["id"]),
            *messages("template", schema("template"), [template(n) for n in range(5)], ["id"]),
            {"type": "STATE", "value": {"capped": 1}},
        ]
        result = run_lines(emu, clock, tmp_path / "1", lines, max_rejects=10)
        assert result.error is None and result.states == [{"capped": 1}]
        assert result.outcomes == {"image": {"created": 100, "rejected": 3}, "template": {"created": 3, "rejected": 2}}
        segments = [{"id": f"S{n}", "name": f"Segment {n}", "definition": member_of("srcL1")} for n in range(102)]
        capped = run_lines(emu, clock, tmp_path / "2", segment_lines(segments), max_rejects=10)
        assert capped.error is None and capped.states == [{"segments": 1}]
        assert capped.outcomes["segment"] == {"created": 100, "rejected": 2}
        assert {r["reason"] for r in capped.rejects} == {SegmentSink.cap_reason}
        image_reasons = {r["reason"] for r in result.rejects if r["stream"] == "image"}
        assert image_reasons == {ImageSink.cap_reason}
        template_reasons = [r["reason"] for r in result.rejects if r["stream"] == "template"]
        assert all("at most 3 templates can be created" in reason for reason in template_reasons)
        assert len(emu.account.records("image")) == 100


def test_dry_run_writes_nothing_and_reports_what_it_would_do(tmp_path: Path) -> None:
    clock = FakeClock()
    with empty(clock) as emu:
        cats = [{"id": cid(f"c{n}"), "external_id": f"c{n}", "name": f"Category {n}"} for n in range(2)]
        lines = [
            *catalog_lines([item(1, ["c0"]), item(2, ["c1"])], [variant(1, 1)], cats)[:-1],
            *segment_lines([{"id": "srcS1", "name": "VIPs", "definition": member_of("srcL1")}])[:-1],
            *campaign_lines([campaign(1, "srcS1")], [message(1, 1)]),
        ]
        result = run_lines(emu, clock, tmp_path / "1", lines, dry_run=True)
        assert result.error is None and result.rejects == []
        assert writes(emu) == []
        assert result.outcomes == {
            "catalog_category": {"created": 2},
            "catalog_item": {"created": 2},
            "catalog_variant": {"created": 1},
            "segment": {"created": 1},
            "list": {"created": 2, "unchanged": 2},  # the same two lists, in both parts of the input
            "metric": {"unchanged": 1},
            "campaign": {"created": 1},
            "campaign_messages": {"created": 1},
            "campaign_message_template": {"created": 1},
        }
        assert "campaign: dry run, would have: 1 created" in result.summary


def test_activate_version_mirrors_lists_and_list_audiences(tmp_path: Path) -> None:
    clock = FakeClock()
    with empty(clock) as emu:
        members = [{"list_name": "VIP", "email": f"p{k}@example.com"} for k in range(5)]
        news = [{"list_name": "News", "email": "n@example.com"}]
        assert (
            run_lines(
                emu, clock, tmp_path / "0", messages("list_member", LIST_MEMBER_SCHEMA, [*members, *news], [])
            ).error
            is None
        )
        clock.sleep(10)
        emu.writes.settle()
        lists = {r.attrs["name"]: r.id for r in emu.account.records("list")}
        assert len(emu.account.list_members(lists["VIP"])) == 5

        def audience(rows: list[dict[str, Any]], version: int, **settings: Any) -> TargetResult:
            head, *records = messages("list_member", LIST_MEMBER_SCHEMA, rows, [])
            activate = {"type": "ACTIVATE_VERSION", "stream": "list_member", "version": version}
            lines = [head, *({**r, "version": version} for r in records), activate]
            return run_lines(emu, clock, tmp_path / f"v{version}", lines, **settings)

        off = audience(members[:3], 1)
        assert off.outcomes["list_member"] == {"written": 3, NOT_DELETED: 2}
        clock.sleep(10)
        assert len(emu.account.list_members(lists["VIP"])) == 5
        on = audience(members[:3], 2, allow_deletes=True)
        assert on.outcomes["list_member"] == {"written": 3, "removed": 2}
        vip = emu.account.list_members(lists["VIP"])
        assert len(vip) == 3 and len(emu.account.list_members(lists["News"])) == 1  # a list it did not write stays

        keep = [{"id": "x", "name": "VIP"}]
        head, *records = messages("list", schema("list"), keep, ["id"])
        lines = [
            head,
            *({**r, "version": 5} for r in records),
            {"type": "ACTIVATE_VERSION", "stream": "list", "version": 5},
        ]
        refused = run_lines(emu, clock, tmp_path / "l1", lines)
        assert refused.outcomes["list"] == {"unchanged": 1, NOT_DELETED: 1}
        mirrored = run_lines(emu, clock, tmp_path / "l2", lines, allow_deletes=True)
        assert mirrored.outcomes["list"] == {"unchanged": 1, "removed": 1}
        assert [r.attrs["name"] for r in emu.account.records("list")] == ["VIP"]
