"""SLOW (minutes, by nature): a new user's first sync of every stream under Klaviyo's published limits.

The emulator enforces the real burst, steady and daily limits (the reports' 225 a day included) and
start_date is 400 days back. Reports must not hold the sync back: the whole sync ends within 5 minutes, the
first event record arrives within 30 s, and the five report streams spend at most 10 POSTs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from klaviyo_emulator import Emulator, EmulatorConfig
from tests.conftest import config_for
from tests.harness import ROOT, select_only

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(420)]

REPORT_TEMPLATES = {
    "/api/campaign-values-reports",
    "/api/flow-values-reports",
    "/api/flow-series-reports",
    "/api/segment-series-reports",
    "/api/form-series-reports",
}
WHOLE_SYNC_S = 300.0
FIRST_EVENT_S = 30.0


def test_first_sync_of_every_stream_is_not_held_back_by_reports(tmp_path: Path) -> None:
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=1.0, daily_limits=True)) as emu:
        start = datetime.now(timezone.utc) - timedelta(days=400)
        config = config_for(emu, start_date=start.isoformat())
        everything = {entry["tap_stream_id"] for entry in select_only(config, set())["streams"]}
        (tmp_path / "config.json").write_text(json.dumps(config))
        (tmp_path / "catalog.json").write_text(json.dumps(select_only(config, everything)))
        cmd = [
            sys.executable,
            "-m",
            "tap_klaviyo",
            "--config",
            str(tmp_path / "config.json"),
            "--catalog",
            str(tmp_path / "catalog.json"),
        ]
        began = time.monotonic()
        first_event: float | None = None
        records: dict[str, int] = {}
        stderr = tmp_path / "stderr.log"
        with stderr.open("w") as err:
            process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
            assert process.stdout is not None
            for line in process.stdout:
                message = json.loads(line)
                if message["type"] == "RECORD":
                    records[message["stream"]] = records.get(message["stream"], 0) + 1
                    if first_event is None and message["stream"] == "event":
                        first_event = time.monotonic() - began
            code = process.wait(timeout=WHOLE_SYNC_S)
        whole = time.monotonic() - began
        posts = [e for e in emu.requests if e.template in REPORT_TEMPLATES]
        print(f"whole sync {whole:.1f} s, first event record {first_event} s, report POSTs {len(posts)}")
        assert code == 0, stderr.read_text()[-3000:]
        assert all(e.status != 429 for e in emu.requests), "the tap must pace itself"
        assert first_event is not None and first_event <= FIRST_EVENT_S, first_event
        assert whole <= WHOLE_SYNC_S, whole
        assert len(posts) <= 10, [(e.template, e.body) for e in posts]
        assert {e.template for e in posts} == REPORT_TEMPLATES
        for name in ("campaign_values_report", "flow_values_report", "flow_series_report", "segment_series_report"):
            assert records.get(name), (name, records)
