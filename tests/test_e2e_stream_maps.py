"""Stream maps and schema flattening (the SDK's built-ins) on this tap's records: the example of docs/tap.md.

Runs in this process against the emulator (no Meltano needed): the same settings work in meltano.yml.
"""

from __future__ import annotations

import hashlib
from typing import Any

from klaviyo_emulator import Emulator
from tests.conftest import config_for
from tests.harness import SyncResult, run_tap, select_only

STREAMS = {"profile", "event", "metric", "tag", "list"}

# The "Stream maps" example of docs/tap.md, as a tap config.
MAPS: dict[str, Any] = {
    "stream_maps": {
        # Pseudonymise: hash the e-mail address, drop the phone number.
        "profile": {"email": "md5(email) if email else None", "phone_number": "__NULL__"},
        # Keep only orders.
        "event": {"__filter__": "metric_name == 'Placed Order'"},
        # Rename a stream; drop another.
        "list": {"__alias__": "klaviyo_list"},
        "tag": "__NULL__",
    },
    "flattening_enabled": True,
    "flattening_max_depth": 1,
}


def sync(emulator: Emulator, **extra: Any) -> SyncResult:
    config = config_for(emulator, **extra)
    return run_tap(config, catalog=select_only(config, STREAMS))


def test_stream_maps_and_flattening(emulator: Emulator) -> None:
    plain = sync(emulator)
    mapped = sync(emulator, **MAPS)

    # Streams: tag dropped, list renamed (its records and key come along), the others kept.
    assert set(plain.records) == STREAMS
    assert set(mapped.records) == {"profile", "event", "metric", "klaviyo_list"}
    assert len(mapped.records["klaviyo_list"]) == len(plain.records["list"])
    assert mapped.key_properties["klaviyo_list"] == ["id"]

    # Profiles: e-mail hashed, phone number gone from records and schema, every profile still there.
    originals = {p["id"]: p for p in plain.records["profile"]}
    profiles = mapped.records["profile"]
    assert len(profiles) == len(originals)
    for profile in profiles:
        email = originals[profile["id"]]["email"]
        assert profile["email"] == (hashlib.md5(email.encode()).hexdigest() if email else None)
        assert "phone_number" not in profile
    assert "phone_number" not in mapped.schemas["profile"]["properties"]

    # Events: only orders, all of them.
    orders = [e["id"] for e in plain.records["event"] if e["metric_name"] == "Placed Order"]
    assert orders
    assert [e["id"] for e in mapped.records["event"]] == orders

    # Flattening: nested objects become columns one level down (location -> location__city).
    schema = mapped.schemas["profile"]["properties"]
    assert "location" not in schema
    assert "location__city" in schema
    with_city = [p for p in plain.records["profile"] if (p.get("location") or {}).get("city")]
    assert with_city
    flat = {p["id"]: p for p in profiles}
    for profile in with_city:
        assert flat[profile["id"]]["location__city"] == profile["location"]["city"]
