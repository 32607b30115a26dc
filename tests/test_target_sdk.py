"""The SDK's standard target tests (singer_sdk.testing) against an emulated empty account.

Most of the SDK's sample files name streams like `test_array_data`: target-klaviyo writes only its five
Klaviyo objects and refuses those (checked below, one by one); the SDK's tests that are about the protocol
run as they are, and one test of the SDK's file template runs on a file of this target's own streams.
"""

from __future__ import annotations

import atexit
import importlib.resources
import json
from pathlib import Path

import pytest
from singer_sdk.testing import get_target_test_class, target_test_streams
from singer_sdk.testing.suites import SingerTestSuite
from singer_sdk.testing.target_tests import (
    TargetCliPrintsTest,
    TargetInvalidSchemaTest,
    TargetRecordBeforeSchemaTest,
)
from singer_sdk.testing.templates import TargetFileTestTemplate

from klaviyo_emulator import DEMO_API_KEY, Emulator, EmulatorConfig
from target_klaviyo.sinks import SINK_TYPES
from target_klaviyo.target import TargetKlaviyo
from tests.target_harness import run_target

FIXTURES = Path(__file__).parent / "fixtures" / "target"

EMULATOR = Emulator(EmulatorConfig(empty=True, rate_limit_scale=0.0, job_delay_s=0.0)).start()
atexit.register(EMULATOR.stop)
CONFIG = {"api_key": DEMO_API_KEY, "api_url": EMULATOR.base_url, "job_poll_interval": 0.05}


class KlaviyoSpecialChars(TargetFileTestTemplate):
    """Profiles and events with non-ASCII text, quotes, control characters and a repeated key."""

    name = "klaviyo_special_chars"

    @property
    def singer_filepath(self) -> Path:
        return FIXTURES / f"{self.name}.singer"

    def validate(self) -> None:
        profiles = {r.attrs["email"]: r.attrs for r in EMULATOR.account.records("profile")}
        assert profiles["zoë@example.com"]["first_name"] == "Zoë again"
        assert profiles["quote@example.com"]["first_name"] == 'O\'Brien "Jr"'
        assert profiles["ünïcode@example.com"]["properties"] == {"emoji": "🎉", "k": 1}
        assert self.runner.state_messages[-1] == {"profile": 1, "event": 3}


TestTargetKlaviyo = get_target_test_class(
    TargetKlaviyo,
    config=CONFIG,
    include_target_tests=False,
    custom_suites=[
        SingerTestSuite(
            kind="target",
            tests=[TargetCliPrintsTest, TargetInvalidSchemaTest, TargetRecordBeforeSchemaTest, KlaviyoSpecialChars],
        )
    ],
)

SAMPLES = sorted(p.name for p in importlib.resources.files(target_test_streams).iterdir() if p.name.endswith(".singer"))


@pytest.mark.parametrize("sample", SAMPLES)
def test_the_sdk_sample_streams_are_refused_with_one_line(sample: str) -> None:
    text = (importlib.resources.files(target_test_streams) / sample).read_text(encoding="utf-8")
    first = json.loads(text.splitlines()[0])
    if first["type"] != "SCHEMA" or "properties" not in first["schema"] or first["stream"] in SINK_TYPES:
        pytest.skip("does not start with a valid schema of an unknown stream (the SDK's own checks come first)")
    before = len(EMULATOR.requests.snapshot())
    result = run_target(CONFIG, text)
    assert result.error is not None and f"cannot write stream {first['stream']!r}" in result.error
    assert not [r for r in EMULATOR.requests.snapshot()[before:] if r.method != "GET"]
