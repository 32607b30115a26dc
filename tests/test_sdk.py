"""The Singer SDK's standard tap tests, against the emulated account."""

from __future__ import annotations

import atexit

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from klaviyo_emulator import DEMO_API_KEY, Emulator, EmulatorConfig
from tap_klaviyo.tap import TapKlaviyo

# The SDK builds its test class at import time, so the account is served from import time too.
_EMULATOR = Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0))
_EMULATOR.start()
atexit.register(_EMULATOR.stop)

SDK_CONFIG = {
    "api_key": DEMO_API_KEY,
    "api_url": _EMULATOR.base_url,
    "report_history_days": 1,
    "metric_aggregate_queries": [
        {"name": "orders", "metric_id": _EMULATOR.account.metric_id("Placed Order"), "measurements": ["count"]}
    ],
}

TestTapKlaviyo = get_tap_test_class(
    TapKlaviyo,
    config=SDK_CONFIG,
    suite_config=SuiteConfig(max_records_limit=None),
)
