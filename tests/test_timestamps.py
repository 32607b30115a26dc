"""The one timestamp parser, and what the tap does with times it cannot read (through HTTP, as a user's run)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from klaviyo_core.timestamps import normalize_timestamp, parse_utc, utc_iso
from klaviyo_emulator import Emulator, EmulatorConfig, ForcedResponse
from tests.conftest import config_for
from tests.harness import SyncResult, run_cli, select_only

UTC = timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00+00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T14:30:00+02:30", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T07:00:00-0500", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T13:00:00+01", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00.5Z", datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2024-05-01T12:00:00.123456789+00:00", datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-01 12:00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-12-31T23:30:00-01:00", datetime(2025, 1, 1, 0, 30, tzinfo=UTC)),
    ],
)
def test_reads_what_klaviyo_and_users_write(text: str, expected: datetime) -> None:
    assert parse_utc(text) == expected
    assert normalize_timestamp(text) == utc_iso(expected) or normalize_timestamp(text) == text.replace("Z", "+00:00")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "yesterday",
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-05-01T25:00:00Z",
        "1714564800",
        None,
        3,
        [],
        {},
    ],
)
def test_what_it_cannot_read_is_none(value: Any) -> None:
    assert parse_utc(value) is None
    assert normalize_timestamp(value) is None


def test_utc_values_keep_klaviyos_text() -> None:
    """The common case costs no parse and changes no byte (record shapes stay as they were)."""
    assert normalize_timestamp("2024-05-01T12:00:00.120+00:00") == "2024-05-01T12:00:00.120+00:00"
    assert normalize_timestamp("2024-05-01T12:00:00.12Z") == "2024-05-01T12:00:00.12+00:00"
    assert normalize_timestamp("2024-05-01T14:00:00+02:00") == "2024-05-01T12:00:00+00:00"
    assert normalize_timestamp(datetime(2024, 5, 1, 12)) == "2024-05-01T12:00:00+00:00"


def _sync(tmp_path: Path, emu: Emulator, state: dict[str, Any] | None, **settings: Any) -> SyncResult:
    config = config_for(emu, **settings)
    config_file = tmp_path / "catalog.json"
    config_file.write_text(json.dumps(select_only(config, {"template"})))
    proc = run_cli(["--catalog", str(config_file)], config, tmp_path, state=state)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return SyncResult.parse(proc.stdout, proc.stderr)


def test_a_template_without_updated_and_with_an_unreadable_created(tmp_path: Path) -> None:
    """The crash of issue 18: a template without `updated` (the spec allows it) ended the sync with a KeyError."""
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0)) as emu:
        template_id = sorted(emu.account.expected_ids("template"))[0]
        page = {
            "data": [
                {"type": "template", "id": template_id, "attributes": {"name": "No dates", "created": "last tuesday"}},
                {"type": "template", "id": "T-two", "attributes": None},
            ],
            "links": {"self": f"{emu.base_url}/api/templates", "next": None},
        }
        emu.force("/api/templates", [ForcedResponse(status=200, body=json.dumps(page))])
        result = _sync(tmp_path, emu, state=None)
    rows = {r["id"]: r for r in result.records["template"]}
    assert set(rows) == {template_id, "T-two"}
    declared = set(result.schemas["template"]["properties"])
    assert set(rows[template_id]) >= declared and set(rows["T-two"]) >= declared
    assert rows[template_id]["updated"] is None and rows[template_id]["created"] is None
    assert rows[template_id]["name"] == "No dates"
    assert "template: Klaviyo sent 'last tuesday' in the date-time field created" in result.stderr
    assert "template: 2 records came without updated" in result.stderr
    assert "Traceback" not in result.stderr
    assert "replication_key_value" not in json.dumps(result.state.get("bookmarks", {}).get("template", {}))


def test_state_written_with_z_and_fractions_is_read(tmp_path: Path) -> None:
    """STATE from another tool (or an older release) with `Z` and 3-digit fractions: read identically on 3.10."""
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0)) as emu:
        state = {
            "bookmarks": {"template": {"replication_key": "updated", "replication_key_value": "2099-01-01T00:00:00.5Z"}}
        }
        result = _sync(tmp_path, emu, state=state, start_date="2020-01-01T00:00:00Z")
        sent = [r for r in emu.requests if r.path.startswith("/api/templates")]
    assert result.records.get("template", []) == []
    assert sent and "2099-01-01T00:00:00.500000+00:00" in sent[0].raw_query.replace("%3A", ":").replace("%2B", "+")
