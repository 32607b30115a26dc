"""Fields real Klaviyo sends that the spec omits arrive in declared columns; new ones are named, not lost."""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import pytest

from klaviyo_core import spec
from klaviyo_emulator import Emulator, EmulatorConfig
from tap_klaviyo.reading.drift import DEEP_EVERY, DriftCheck
from tests.conftest import config_for
from tests.harness import ROOT, run_tap, select_only

DRIFT = "which the stream's schema does not declare"


def undeclared(value: Any, schema: Mapping[str, Any], path: str = "") -> Iterator[str]:
    """Dotted paths of keys in `value` that `schema` (with explicit properties) does not list."""
    if isinstance(value, list):
        items = schema.get("items") or {}
        for item in value:
            yield from undeclared(item, items, path)
        return
    props = schema.get("properties")
    if not isinstance(value, dict) or not props:
        return
    for key, child in value.items():
        if key not in props:
            yield path + key
        else:
            yield from undeclared(child, props[key], f"{path}{key}.")


def test_full_sync_declares_every_field_the_emulator_serves(full_sync: tuple[Any, list[Any]]) -> None:
    result, _ = full_sync
    missing = {
        f"{stream}: {key}"
        for stream, records in result.records.items()
        for record in records
        for key in undeclared(record, result.schemas[stream])
    }
    assert not missing, sorted(missing)[:10]
    assert DRIFT not in result.stderr


def test_profile_fields_missing_from_the_spec_arrive(full_sync: tuple[Any, list[Any]], emulator: Emulator) -> None:
    result, _ = full_sync
    schema = result.schemas["profile"]["properties"]
    assert schema["anonymous_id"] == {"type": ["string", "null"]}
    assert schema["whatsapp_bsuid"] == {"type": ["string", "null"]}
    email = schema["subscriptions"]["properties"]["email"]["properties"]
    assert email["click_tracking"] == email["open_tracking"]  # same shape as its documented neighbour
    for record in result.records["profile"]:
        stored = emulator.account.get("profile", record["id"])
        assert stored is not None
        assert record["anonymous_id"] == stored.attrs["anonymous_id"]
        assert record["whatsapp_bsuid"] == stored.attrs["whatsapp_bsuid"]
        click = record["subscriptions"]["email"]["click_tracking"]
        assert click == stored.attrs["subscriptions"]["email"]["click_tracking"]
    values = [r["anonymous_id"] for r in result.records["profile"]]
    assert any(values) and None in values
    assert any(r["whatsapp_bsuid"] for r in result.records["profile"])
    assert "anonymous_id" in result.schemas["event"]["properties"]["profile"]["properties"]


def test_flow_message_image_relationship_becomes_image_id(full_sync: tuple[Any, list[Any]], emulator: Emulator) -> None:
    result, _ = full_sync
    assert result.schemas["flow_messages"]["properties"]["image_id"] == {"type": ["string", "null"]}
    records = result.records["flow_messages"]
    for record in records:
        stored = emulator.account.get("flow-message", record["id"])
        assert stored is not None
        assert record["image_id"] == stored.rels.get("image"), record["id"]
    assert any(r["image_id"] for r in records) and any(r["image_id"] is None for r in records)


@pytest.mark.parametrize("revision", ["2025-07-15", "2024-10-15"])
def test_older_revision_flow_actions_validate(emulator: Emulator, revision: str) -> None:
    """Before 2025-10-15 flow actions came without `definition`: the overlay declares that shape too."""
    config = config_for(emulator, revision=revision)
    result = run_tap(config, catalog=select_only(config, {"flow", "flow_action"}))
    actions = result.records["flow_action"]
    assert {a["id"] for a in actions} == emulator.account.expected_ids("flow-action")
    validator = jsonschema.Draft7Validator(result.schemas["flow_action"], format_checker=jsonschema.FormatChecker())
    for action in actions:
        assert not list(validator.iter_errors(action)), action["id"]
        assert action["definition"] is None  # older revisions send none: a null column (records are total)
        stored = emulator.account.get("flow-action", action["id"])
        assert stored is not None
        assert action["action_type"] == stored.extra["action_type"]
        assert action["status"] == stored.extra["status"]
    assert any(a["tracking_options"] for a in actions) and any(a["send_options"] for a in actions)
    assert any(a["render_options"] for a in actions)
    assert all("badge_options" in a for a in actions)  # a schema column, null where the revision has none
    assert not [key for a in actions for key in undeclared(a, result.schemas["flow_action"])]
    assert DRIFT not in result.stderr


def test_an_undeclared_attribute_is_named_once_per_stream(caplog: pytest.LogCaptureFixture) -> None:
    """Klaviyo starts sending a field nobody declared: one warning naming stream and field, data kept."""
    extra = {"profile": {"loyalty_tier": "gold"}}
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0, extra_attributes=extra)) as emu:
        config = config_for(emu)
        result = run_tap(config, catalog=select_only(config, {"profile"}))
    assert len(result.records["profile"]) > 100  # several pages, one warning
    lines = [line for line in result.stderr.splitlines() if DRIFT in line]
    assert len(lines) == 1, lines
    assert "profile: Klaviyo sent the field loyalty_tier," in lines[0]
    assert [r.levelno for r in caplog.records if DRIFT in r.getMessage()] == [logging.WARNING]
    assert all(r["loyalty_tier"] == "gold" for r in result.records["profile"])


def test_nested_drift_is_named_with_its_path(caplog: pytest.LogCaptureFixture) -> None:
    properties = spec.record_schema("/api/profiles")["properties"]
    check = DriftCheck("profile", logging.getLogger("tap-klaviyo.test"), properties)
    record = {"id": "1", "email": "a@b.c", "subscriptions": {"email": {"click_tracking": {"consent": "x"}}}}
    with caplog.at_level(logging.WARNING):
        check.check(record)
        assert not caplog.records  # click_tracking comes from the overlay
        later = {**record, "location": {"city": "Boston", "geohash": "drt2z"}}
        check.check(later)
        for _ in range(2 * DEEP_EVERY):
            check.check(later)
    assert [r.getMessage() for r in caplog.records] == [
        "profile: Klaviyo sent the field location.geohash, which the stream's schema does not declare: "
        "schema-driven targets drop it (add it to tap_klaviyo/schema_overlay.json)"
    ]


def test_overlay_entries_say_where_they_were_seen() -> None:
    overlay = json.loads((ROOT / "tap_klaviyo" / "schema_overlay.json").read_text(encoding="utf-8"))
    entries = [e for sections in overlay["resources"].values() for s in sections.values() for e in s.values()]
    assert len(entries) >= 11
    assert all(e["seen"].strip() for e in entries)


def test_generator_check_passes_and_flags_entries_the_spec_now_declares(monkeypatch: pytest.MonkeyPatch) -> None:
    done = subprocess.run(
        [sys.executable, "scripts/generate_schemas.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = importlib.util.spec_from_file_location("generate_schemas", ROOT / "scripts" / "generate_schemas.py")
    assert loaded is not None and loaded.loader is not None
    generator = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(generator)
    assert generator.overlay_problems() == []
    stale = {
        "profile": {"attributes": {"email": {"schema": {"type": ["string", "null"]}, "seen": "x"}}},
        "flow-message": {"relationships": {"template": {"seen": "x"}}},
    }
    monkeypatch.setattr(spec, "load_overlay", lambda: stale)
    assert generator.overlay_problems() == [
        "overlay profile attribute email: the spec declares it now; remove it",
        "overlay flow-message relationship template: the spec declares it now; remove it",
    ]
