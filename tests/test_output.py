"""The tap's Singer writer: RECORD lines byte-for-byte what the SDK's own msgspec writer would write."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib.encoding.simple import RecordMessage

from klaviyo_emulator import Emulator
from tests.conftest import config_for
from tests.harness import run_tap, select_only


def test_record_lines_are_what_the_sdk_writer_formats(emulator: Emulator) -> None:
    config = config_for(emulator, emit_activate_version_messages=True, full_read_days=1)
    result = run_tap(config, catalog=select_only(config, {"event", "list", "campaign"}))
    lines = [line for line in result.stdout.splitlines() if line.startswith('{"type":"RECORD"')]
    assert len(lines) == sum(result.counts().values()) > 0
    assert any('"version":' in line for line in lines)  # a full read stamps its records with a version
    sdk = MsgSpecWriter()
    for line, message in zip(lines, (m for m in result.messages if m["type"] == "RECORD"), strict=True):
        record = RecordMessage.from_dict(message)
        assert sdk.format_message(record).decode() == line + "\n"


def test_optional_fields_in_sdk_order(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """version and time_extracted, each present or not, in the order the SDK writes them."""
    from tap_klaviyo.reading.output import SingerOutput

    sdk = MsgSpecWriter()
    when = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
    for version in (None, 3):
        for extracted in (None, when):
            record = {"a": [1, None, 2.5], "é": {"b": when}}
            message = RecordMessage(stream='odd "name"', record=record, version=version, time_extracted=extracted)
            writer = SingerOutput()
            writer.write_message(message)
            writer.flush()
            assert capsysbinary.readouterr().out == bytes(sdk.format_message(message))
