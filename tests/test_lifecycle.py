"""The run's lifecycle (tap_klaviyo/reading/run.py): its end runs once, also when a stream fails; progress
knows how far through its range a windowed stream is."""

from __future__ import annotations

import gc
import io
import json
import logging
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from klaviyo_core.timestamps import parse_utc
from klaviyo_emulator import Emulator, EmulatorConfig, ForcedResponse
from tap_klaviyo.reading import progress
from tap_klaviyo.tap import TapKlaviyo
from tests.conftest import config_for
from tests.harness import SyncResult, run_cli, select_only


def _sync(config: dict[str, Any], streams: set[str]) -> tuple[TapKlaviyo, SyncResult, BaseException | None]:
    """A sync in this process (the tap is created inside the redirection: the SDK's handlers keep the stderr
    they were created with), and the error that ended it, if any."""
    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.StringIO()
    handler = logging.StreamHandler(err)
    logging.getLogger().addHandler(handler)
    failure: BaseException | None = None
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                with TapKlaviyo(config=config, catalog=select_only(config, streams)) as tap:
                    tap.sync_all()
            except Exception as exc:
                failure = exc
    finally:
        logging.getLogger().removeHandler(handler)
    out.seek(0)
    return tap, SyncResult.parse(out.read(), err.getvalue()), failure


def test_a_failing_stream_still_ends_the_run() -> None:
    """A fatal error in one stream: the summary is written, the spool removed, gc's settings given back."""
    before = gc.get_threshold()
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0)) as emu:
        emu.force("/api/events", [ForcedResponse(status=400, body=None)])
        tap, result, failure = _sync(config_for(emu), {"event", "profile"})
    assert failure is not None
    assert tap.run.ended
    assert tap.run.spool.closed
    assert gc.get_threshold() == before
    assert "Traceback" not in result.stderr


def test_a_failed_run_still_prints_its_summary(tmp_path: Path) -> None:
    """As a user sees it: one error line, exit 1, and the summary of what the run did before it failed."""
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0)) as emu:
        emu.force("/api/profiles", [ForcedResponse(status=400, body=None)])
        config = config_for(emu)
        catalog = tmp_path / "catalog.json"
        catalog.write_text(json.dumps(select_only(config, {"metric", "profile"})))
        proc = run_cli(["--catalog", str(catalog)], config, tmp_path)
    assert proc.returncode == 1
    summary = proc.stderr[proc.stderr.index("summary:") :]
    assert "metric" in summary and "profile" in summary


def test_progress_says_how_far_through_the_range_a_windowed_read_is() -> None:
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0)) as emu:
        tap, result, failure = _sync(config_for(emu, start_date="2024-01-01T00:00:00Z"), {"event"})
    assert failure is None
    stream: Any = tap.streams["event"]
    last = result.records["event"][-1]["datetime"]
    assert stream.stats.position == last
    assert stream.stats.range is not None
    share = stream.stats.through()
    assert share is not None and 0.0 < share <= 1.0
    start, stop = stream.stats.range
    at = parse_utc(last)
    assert at is not None
    assert share == pytest.approx(min(1.0, (at - start) / (stop - start)))
    out = io.StringIO()
    logger = logging.getLogger("test-lifecycle-progress")
    logger.addHandler(logging.StreamHandler(out))
    logger.setLevel(logging.INFO)
    progress.Reporter([stream], logger, 60).progress()
    assert f"{round(share * 100)}% of {start:%Y-%m-%d %H:%M}..{stop:%Y-%m-%d %H:%M}" in out.getvalue()


#: The sync command with a bug injected where no fetch is: the main thread's `post_process` of profiles.
FAILING_POST_PROCESS = """
import gc, sys
from tap_klaviyo.reading.stream import KlaviyoStream
from tap_klaviyo.tap import TapKlaviyo
process = KlaviyoStream.post_process
def failing(self, row, context=None):
    if self.name == "profile":
        raise RuntimeError("a bug after the fetch")
    return process(self, row, context)
KlaviyoStream.post_process = failing
before = gc.get_threshold()
try:
    TapKlaviyo.cli.main(sys.argv[1:], standalone_mode=False)
except RuntimeError as exc:
    print(f"failed: {exc}; gc settings given back: {gc.get_threshold() == before}", file=sys.stderr)
"""


def test_a_failure_outside_the_fetch_still_ends_the_run(tmp_path: Path) -> None:
    """The sync command owns its run: a failure where no fetch is (after the records generator handed a record
    over) still gets the summary, and gc's settings back. In a process of its own: the command sets up
    logging for the process it runs in."""
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0)) as emu:
        config = config_for(emu)
        (tmp_path / "config.json").write_text(json.dumps(config))
        (tmp_path / "catalog.json").write_text(json.dumps(select_only(config, {"metric", "profile"})))
        args = ["--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")]
        proc = subprocess.run(
            [sys.executable, "-c", FAILING_POST_PROCESS, *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    stderr = proc.stderr
    assert "failed: a bug after the fetch; gc settings given back: True" in stderr, stderr[-3000:]
    assert "summary:" in stderr, stderr[-2000:]
    summary = stderr[stderr.index("summary:") :]
    assert "metric" in summary
