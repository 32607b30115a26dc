"""A concurrent sync emits exactly the records of a sequential one, stays resumable, and keeps under the limits.

One tiny account with Klaviyo's rate limits enforced, synced with max_concurrency 8 and with 1.
"""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from klaviyo_emulator import Emulator, EmulatorConfig
from tap_klaviyo.reading import progress
from tap_klaviyo.reading.stream import KlaviyoStream
from tap_klaviyo.tap import TapKlaviyo
from tests.conftest import config_for
from tests.harness import SyncResult, run_cli, run_tap

#: Report values accrue until now: two runs agree on their keys, not their numbers.
# Rows whose numbers cover up to the run's start (values totals, today's part-day in series and aggregates).
TIME_DEPENDENT = {
    "campaign_values_report",
    "flow_values_report",
    "flow_series_report",
    "segment_series_report",
    "form_series_report",
    "metric_aggregate",
}
SMALL_REPORTS = {"report_history_days": 0, "report_lookback_days": 0}


@pytest.fixture(scope="module")
def paced() -> Iterator[Emulator]:
    # The CLI logs the tap's INFO lines (progress, summary); in-process the level has to be set here.
    logger = logging.getLogger("tap-klaviyo")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=1.0)) as emu:
            yield emu
    finally:
        logger.setLevel(level)


def timed_run(emu: Emulator, **settings: Any) -> tuple[SyncResult, str]:
    emu.reset_rate_limits()  # each run paces itself from zero; the server's windows may still hold the last one
    started = datetime.now(timezone.utc).isoformat()
    return run_tap(config_for(emu, **SMALL_REPORTS, **settings)), started


@pytest.fixture(scope="module")
def runs(paced: Emulator) -> dict[str, Any]:
    paced.clear_log()
    sequential, seq_started = timed_run(paced, max_concurrency=1)
    seq_requests = list(paced.requests)
    paced.clear_log()
    concurrent, con_started = timed_run(paced, max_concurrency=8)
    return {
        "sequential": sequential,
        "concurrent": concurrent,
        "started": (seq_started, con_started),
        "requests": seq_requests + list(paced.requests),
    }


def keyed(result: SyncResult, stream: str, record: dict[str, Any]) -> str:
    keys = result.key_properties[stream]
    if stream in TIME_DEPENDENT:
        return json.dumps([record.get(k) for k in keys])
    return json.dumps(record, sort_keys=True)


def contents(result: SyncResult) -> dict[str, Counter[str]]:
    return {stream: Counter(keyed(result, stream, r) for r in rows) for stream, rows in result.records.items()}


def test_concurrent_sync_emits_exactly_the_records_of_a_sequential_one(runs: dict[str, Any]) -> None:
    sequential, concurrent = runs["sequential"], runs["concurrent"]
    assert sum(sequential.counts().values()) > 3000
    assert concurrent.counts() == sequential.counts()
    assert contents(concurrent) == contents(sequential)


def test_sorted_streams_come_in_bookmark_order(paced: Emulator, runs: dict[str, Any]) -> None:
    concurrent: SyncResult = runs["concurrent"]
    tap = TapKlaviyo(config=config_for(paced), validate_config=False)
    checked = set()
    for name, stream in tap.streams.items():
        key = stream.replication_key
        if not (stream.is_sorted and key and concurrent.records.get(name)):
            continue
        partitions = stream.partitions or [{}]
        partition_keys = sorted(partitions[0])
        last: dict[tuple[Any, ...], str] = {}
        for record in concurrent.records[name]:
            partition = tuple(record.get(k) for k in partition_keys)
            value = record.get(key)
            if value is None:
                continue
            assert value >= last.get(partition, ""), f"{name} out of {key} order at {record}"
            last[partition] = value
        checked.add(name)
    assert {"event", "profile", "campaign", "flow", "list", "segment"} <= checked


def normalized(state: dict[str, Any], run_started: str) -> dict[str, Any]:
    """Bookmarks without the run's own clock (future-dated events stop at the run's start) or empty entries."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items() if v not in ({}, None)}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and value >= run_started and value[:4].isdigit():
            return "<run start>"
        return value

    out: dict[str, Any] = walk(state)
    return out


def test_final_bookmarks_are_the_same(runs: dict[str, Any]) -> None:
    seq_started, con_started = runs["started"]
    sequential = normalized(runs["sequential"].state, seq_started)
    concurrent = normalized(runs["concurrent"].state, con_started)
    assert sequential["bookmarks"]["event"]["replication_key_value"]
    assert concurrent == sequential


@pytest.mark.realtime
def test_no_429_under_klaviyo_limits(runs: dict[str, Any]) -> None:
    requests = runs["requests"]
    assert len(requests) > 100
    assert [e for e in requests if e.status == 429] == []
    # The tap's own summary says the same.
    total = [line for line in runs["concurrent"].stderr.splitlines() if "summary: total" in line]
    assert total and total[-1].split()[-3] == "0"


class Interrupted(Exception):
    """Stands in for a crash in the middle of a stream."""


def run_until(config: dict[str, Any], stream: str, after: int, monkeypatch: pytest.MonkeyPatch) -> SyncResult:
    """A concurrent sync that dies after `after` records of `stream`; what it printed until then."""
    emitted = 0
    process = KlaviyoStream.post_process

    def counting(self: KlaviyoStream, row: dict[str, Any], context: Any = None) -> dict[str, Any] | None:
        nonlocal emitted
        record = process(self, row, context)
        if self.name == stream and record is not None:
            emitted += 1
            if emitted > after:
                raise Interrupted
        return record

    monkeypatch.setattr(KlaviyoStream, "post_process", counting)
    monkeypatch.setattr(KlaviyoStream, "STATE_MSG_FREQUENCY", 100)  # STATE often enough to stop between them
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.StringIO()
    handler = logging.StreamHandler(err)
    logging.getLogger().addHandler(handler)
    try:
        with redirect_stdout(out), redirect_stderr(err), pytest.raises(Interrupted), TapKlaviyo(config=config) as tap:
            tap.sync_all()
    finally:
        logging.getLogger().removeHandler(handler)
        monkeypatch.undo()
    out.seek(0)
    return SyncResult.parse(out.read(), err.getvalue())


def keys_until_last_state(result: SyncResult) -> dict[str, set[str]]:
    """Records a target has committed: those before the run's last STATE message."""
    last_state = max(i for i, m in enumerate(result.messages) if m["type"] == "STATE")
    out: dict[str, set[str]] = {}
    for message in result.messages[:last_state]:
        if message["type"] == "RECORD":
            stream = message["stream"]
            keys = result.key_properties[stream]
            out.setdefault(stream, set()).add(json.dumps([message["record"].get(k) for k in keys]))
    return out


def all_keys(result: SyncResult) -> dict[str, set[str]]:
    return {
        stream: {json.dumps([r.get(k) for k in result.key_properties[stream]]) for r in rows}
        for stream, rows in result.records.items()
    }


@pytest.mark.parametrize(("stream", "after"), [("event", 1_200), ("profile_list", 150), ("flow_messages", 4)])
def test_an_interrupted_concurrent_run_resumes_from_its_last_state_without_losing_records(
    paced: Emulator, runs: dict[str, Any], monkeypatch: pytest.MonkeyPatch, stream: str, after: int
) -> None:
    paced.reset_rate_limits()
    config = config_for(paced, max_concurrency=8, **SMALL_REPORTS)
    first = run_until(config, stream, after, monkeypatch)
    assert first.states, "the interrupted run wrote no STATE"
    committed = keys_until_last_state(first)
    assert 0 < len(committed.get(stream, set())) <= after
    paced.reset_rate_limits()
    second = run_tap(config, state=first.state)
    resumed = all_keys(second)
    expected = all_keys(runs["sequential"])
    for name, keys in expected.items():
        lost = keys - committed.get(name, set()) - resumed.get(name, set())
        assert not lost, f"{name}: {len(lost)} records lost across the interruption"
    # The resumed run did not start from scratch where a bookmark allowed it not to.
    if stream == "event":
        assert len(second.records["event"]) < len(runs["sequential"].records["event"])


@pytest.mark.realtime
def test_progress_lines_and_a_summary_on_stderr(paced: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "PROGRESS_INTERVAL_S", 0.1)
    paced.reset_rate_limits()
    result = run_tap(config_for(paced, max_concurrency=8, **SMALL_REPORTS))
    lines = result.stderr.splitlines()
    assert any("progress: " in line and " records, " in line and " requests, " in line for line in lines)
    summary = [line.split("summary: ", 1)[1].split() for line in lines if "summary: " in line]
    header, rows = summary[0], {row[0]: row for row in summary[1:]}
    assert header == ["stream", "records", "requests", "retries", "429s", "seconds", "cpu", "s"]
    for stream, records in result.counts().items():
        assert int(rows[stream][1].replace(",", "")) == records, stream
    assert int(rows["event"][2]) >= 1 and int(rows["total"][4]) == 0
    # The SDK's METRIC lines as it prints them: a record count for every stream, partition and child.
    counted = {m["tags"]["stream"] for m in _metrics(lines) if m["metric"] == "record_count"}
    assert set(result.counts()) <= counted
    assert any(m["metric"] == "http_request_duration" for m in _metrics(lines))
    assert not [line for line in lines if "with context keys" in line]


def _metrics(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line.split("METRIC: ", 1)[1]) for line in lines if "METRIC: " in line]


def test_progress_tells_how_far_through_the_window_range() -> None:
    stats = progress.RunStats()
    stats.range = (datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 1, 11, tzinfo=timezone.utc))
    stats.position = "2024-01-03T12:00:00+00:00"
    assert stats.through() == pytest.approx(0.25)

    class Fake:
        name = "event"

    fake = Fake()
    fake.stats = stats  # type: ignore[attr-defined]
    stats.records, stats.requests, stats.busy = 1000, 3, 2.0
    out = io.StringIO()
    logger = logging.getLogger("test-progress")
    logger.addHandler(logging.StreamHandler(out))
    logger.setLevel(logging.INFO)
    progress.Reporter([fake], logger, 60).progress()  # type: ignore[list-item]
    assert out.getvalue().strip() == (
        "progress: event: 1,000 records, 3 requests, 500 records/s, 25% of 2024-01-01 00:00..2024-01-11 00:00"
    )


@pytest.mark.parametrize("args", [["--about"], ["--discover"]])
def test_quiet_outside_a_sync(args: list[str], tmp_path: Path) -> None:
    proc = run_cli(args, {"api_key": "pk_dummy"}, tmp_path, timeout=120)
    assert proc.returncode == 0
    assert "progress:" not in proc.stderr and "summary:" not in proc.stderr
