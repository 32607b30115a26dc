"""Reports: values reports one request a run, daily series in date order, per-day values on a per-run
budget, resumable from any STATE, Klaviyo's 1/s, 2/min, 225/day respected."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from singer_sdk.exceptions import ConfigValidationError

from klaviyo_core import pacing
from klaviyo_emulator import Emulator, EmulatorConfig
from klaviyo_emulator import reports as emulator_reports
from klaviyo_emulator.server import ForcedResponse, RequestLogEntry
from tap_klaviyo.reading.settings import settings_errors
from tap_klaviyo.reading.stream import KlaviyoStream
from tap_klaviyo.tap import TapKlaviyo
from tests.conftest import config_for
from tests.fake_clock import FakeClock
from tests.harness import SyncResult, run_tap, select_only

CAMPAIGN_KEY = ("campaign_id", "campaign_message_id", "send_channel")
FLOW_KEY = ("flow_id", "flow_message_id", "send_channel")


@pytest.fixture
def virtual_pacing(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The tap's own pacing on a clock that moves only when it sleeps: Klaviyo's 2 report requests a minute
    cost no real time here (the emulator of these tests enforces no limits)."""
    virtual = FakeClock()
    real = pacing.Limiter

    def limiter(*args: Any, **kwargs: Any) -> pacing.Limiter:
        return real(*args, **{**kwargs, "clock": virtual.monotonic, "sleep": virtual.sleep})

    monkeypatch.setattr(pacing, "Limiter", limiter)
    return virtual


def per_day(
    emu: Emulator, stream: str, start: datetime, *, requests: int, lookback: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Config and catalog of a per-day values report run from `start`, `requests` report requests a run."""
    config = config_for(
        emu,
        start_date=start.isoformat(),
        report_values_per_day=[stream],
        report_requests_per_run=requests,
        report_lookback_days=lookback,
    )
    return config, select_only(config, {stream})


def campaign_send_day(emu: Emulator) -> datetime:
    sends = [
        datetime.fromisoformat(c.attrs["send_time"])
        for c in emu.account.records("campaign")
        if c.attrs.get("send_time")
    ]
    day = max(s for s in sends if s < datetime.now(timezone.utc))
    return day.replace(hour=0, minute=0, second=0, microsecond=0)


def posts(emu: Emulator, template: str) -> list[RequestLogEntry]:
    return [e for e in emu.requests if e.method == "POST" and e.template == template]


def timeframe(entry: RequestLogEntry) -> tuple[datetime, datetime]:
    frame = json.loads(entry.body or "{}")["data"]["attributes"]["timeframe"]
    return datetime.fromisoformat(frame["start"]), datetime.fromisoformat(frame["end"])


def keys(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> set[tuple[Any, ...]]:
    return {tuple(r[c] for c in columns) for r in rows}


def test_values_reports_cost_one_request_a_run_and_upsert_by_grouping() -> None:
    # Klaviyo's real limits on the server: the tap must pace itself and never see a 429.
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=1.0)) as emu:
        start_date = (datetime.now(timezone.utc) - timedelta(days=400)).isoformat()
        config = config_for(emu, start_date=start_date)
        catalog = select_only(config, {"campaign_values_report", "flow_values_report"})
        runs = [run_tap(config, catalog=catalog)]
        assert all(e.status == 200 for e in emu.requests), [e.status for e in emu.requests]
        # The next run (its own pacer, a second later) may meet the 1/s burst once: it waits and retries.
        runs.append(run_tap(config, catalog=catalog))
        for template in ("/api/campaign-values-reports", "/api/flow-values-reports"):
            sent = posts(emu, template)
            assert len([e for e in sent if e.status == 200]) == 2, "one request a run"
            for entry in [e for e in sent if e.status == 200]:
                start, end = timeframe(entry)
                assert end <= datetime.now(timezone.utc), "the timeframe never ends in the future"
                assert end - start <= timedelta(days=365), "Klaviyo's one-year limit"
                assert end - start >= timedelta(days=364), "the trailing year, not a day"
        for name, key in (("campaign_values_report", CAMPAIGN_KEY), ("flow_values_report", FLOW_KEY)):
            assert runs[0].key_properties[name] == list(key), "keyed by the grouping alone: each run upserts"
            first, second = runs[0].records[name], runs[1].records[name]
            assert first and len(keys(first, key)) == len(first)
            assert keys(second, key) == keys(first, key)
            assert all(r["timeframe_start"] < r["timeframe_end"] for r in first)
            assert all(isinstance(r.get("opens"), int | float) for r in first)
            assert first[0]["date"] is None  # totals, not days: the column is there, null
            assert runs[0].state["bookmarks"].get(name, {}).get("replication_key_value") is None


def test_values_report_pages_follow_page_cursor(
    fresh_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, virtual_pacing: FakeClock
) -> None:
    config = config_for(fresh_emulator)
    catalog = select_only(config, {"flow_values_report"})
    whole = run_tap(config, catalog=catalog).records["flow_values_report"]
    monkeypatch.setattr(emulator_reports, "REPORT_PAGE_SIZE", 4)
    fresh_emulator.clear_log()
    paged = run_tap(config, catalog=catalog).records["flow_values_report"]
    sent = posts(fresh_emulator, "/api/flow-values-reports")
    assert len(whole) > 8 and len(sent) == -(-len(whole) // 4)
    assert all(("page_cursor" in dict(e.query)) == (i > 0) for i, e in enumerate(sent))
    assert keys(paged, FLOW_KEY) == keys(whole, FLOW_KEY) and len(paged) == len(whole)


def test_values_window_starts_no_earlier_than_start_date(fresh_emulator: Emulator) -> None:
    start_date = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=30)
    config = config_for(fresh_emulator, start_date=start_date.isoformat())
    run_tap(config, catalog=select_only(config, {"campaign_values_report"}))
    (entry,) = posts(fresh_emulator, "/api/campaign-values-reports")
    assert timeframe(entry)[0] == start_date


def resumed_runs_are_complete(
    config: dict[str, Any],
    catalog: dict[str, Any],
    stream: str,
    key: Callable[[dict[str, Any]], tuple[Any, ...]],
    lookback: timedelta,
) -> int:
    """Resume from every STATE the full run printed: what came before it plus the resumed run is everything,
    and the resumed run starts no earlier than the bookmark's day less the lookback. Returns the STATEs tried."""
    full = run_tap(config, catalog=catalog)
    want = {key(r) for r in full.records[stream]}
    assert want
    emitted: set[tuple[Any, ...]] = set()
    tried = 0
    for message in full.messages:
        if message["type"] == "RECORD" and message["stream"] == stream:
            emitted.add(key(message["record"]))
        elif message["type"] == "STATE":
            state = message["value"]
            resumed = run_tap(config, state=state, catalog=catalog)
            missing = want - emitted - {key(r) for r in resumed.records[stream]}
            assert not missing, (state, sorted(missing)[:5])
            bookmark = (state.get("bookmarks", {}).get(stream) or {}).get("replication_key_value")
            if bookmark:
                floor = datetime.fromisoformat(bookmark) - lookback
                assert min(r["date"] for r in resumed.records[stream]) >= floor.isoformat()
            tried += 1
    return tried


def by_date(*columns: str) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    return lambda r: (r["date"], *(r[c] for c in columns))


def test_series_report_resumes_from_every_state(
    fresh_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, virtual_pacing: FakeClock
) -> None:
    monkeypatch.setattr(KlaviyoStream, "STATE_MSG_FREQUENCY", 400)
    start = datetime.now(timezone.utc) - timedelta(days=100)
    config = config_for(fresh_emulator, start_date=start.isoformat(), report_lookback_days=0, report_requests_per_run=5)
    catalog = select_only(config, {"flow_series_report"})
    first = run_tap(config, catalog=catalog)
    rows = first.records["flow_series_report"]
    assert [r["date"] for r in rows] == sorted(r["date"] for r in rows), "rows in date order"
    assert len(posts(fresh_emulator, "/api/flow-series-reports")) == 2, "100 days: two 60-day daily series"
    assert len(first.states) > 4
    tried = resumed_runs_are_complete(
        config, catalog, "flow_series_report", by_date("flow_id", "flow_message_id", "send_channel"), timedelta(0)
    )
    assert tried == len(first.states)


def test_values_reports_resume_from_every_state(
    fresh_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, virtual_pacing: FakeClock
) -> None:
    monkeypatch.setattr(KlaviyoStream, "STATE_MSG_FREQUENCY", 7)
    day = campaign_send_day(fresh_emulator)
    config = config_for(fresh_emulator, start_date=(day - timedelta(days=1)).isoformat(), report_lookback_days=1)
    snapshot = select_only(config, {"campaign_values_report"})

    def snapshot_key(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[c] for c in CAMPAIGN_KEY)

    assert resumed_runs_are_complete(config, snapshot, "campaign_values_report", snapshot_key, timedelta(0)) >= 1
    per_day = {
        **config,
        "end_date": (day + timedelta(days=4)).isoformat(),
        "report_values_per_day": ["campaign_values_report"],
        "report_requests_per_run": 10,
    }
    catalog = select_only(per_day, {"campaign_values_report"})
    key = by_date(*CAMPAIGN_KEY)
    assert resumed_runs_are_complete(per_day, catalog, "campaign_values_report", key, timedelta(days=1)) > 1


def test_per_day_values_budget_stops_and_next_run_continues(
    fresh_emulator: Emulator, virtual_pacing: FakeClock
) -> None:
    day = campaign_send_day(fresh_emulator)
    config, catalog = per_day(fresh_emulator, "campaign_values_report", day - timedelta(days=2), requests=3, lookback=1)
    template = "/api/campaign-values-reports"

    first = run_tap(config, catalog=catalog)
    first_days = [timeframe(e)[0] for e in posts(fresh_emulator, template)]
    assert first_days == [day - timedelta(days=2 - i) for i in range(3)]
    continues = (day + timedelta(days=1)).date().isoformat()
    assert f"continues from {continues} on the next run" in first.stderr
    assert first.key_properties["campaign_values_report"] == ["date", *CAMPAIGN_KEY]
    bookmark = first.state["bookmarks"]["campaign_values_report"]["replication_key_value"]
    assert bookmark == day.isoformat(), "the bookmark reaches the last day read, rows or not"

    fresh_emulator.clear_log()
    second = run_tap(config, state=first.state, catalog=catalog)
    second_days = [timeframe(e)[0] for e in posts(fresh_emulator, template)]
    # The lookback (one day) and the bookmark's day again, then three new days.
    assert second_days == [day - timedelta(days=1 - i) for i in range(5)]
    assert set(first_days) & set(second_days) == {day - timedelta(days=1), day}

    reference = run_tap({**config, "report_requests_per_run": 100}, catalog=catalog)
    cutoff = (day + timedelta(days=3)).isoformat()
    key = by_date(*CAMPAIGN_KEY)
    want = {key(r) for r in reference.records["campaign_values_report"] if r["date"] <= cutoff}
    got = {key(r) for r in [*first.records["campaign_values_report"], *second.records["campaign_values_report"]]}
    assert want and got == want


def test_daily_cap_stops_only_the_report(fresh_emulator: Emulator) -> None:
    config = config_for(fresh_emulator)
    catalog = select_only(config, {"flow_values_report", "metric"})
    fresh_emulator.force(
        path_prefix="/api/flow-values-reports",
        responses=[ForcedResponse(status=429, retry_after=6 * 3600)],
        method="POST",
    )
    result = run_tap(config, catalog=catalog)
    assert "flow_values_report stopped early" in result.stderr
    assert "Run again later" in result.stderr or "resets" in result.stderr
    assert {r["id"] for r in result.records["metric"]} == fresh_emulator.account.expected_ids("metric")


def test_series_reports_need_no_setting_and_old_settings_still_work(fresh_emulator: Emulator) -> None:
    config = config_for(fresh_emulator, report_history_days=10)
    catalog = select_only(config, {"segment_series_report", "form_series_report"})
    result = run_tap(config, catalog=catalog)
    assert result.records["segment_series_report"] and result.records["form_series_report"]
    old = {**config, "series_reports": ["flow_series_report"], "report_history_days": 1}
    assert not settings_errors(old)
    assert run_tap(old, catalog=catalog).records["segment_series_report"]
    # The settings' schema says what they allow: the SDK names each setting that breaks it, before any request.
    with pytest.raises(ConfigValidationError) as raised:
        TapKlaviyo(config={**config, "report_values_per_day": ["flow_series_report"], "report_window_days": 400})
    bad = raised.value.errors
    assert len(bad) == 2
    assert any("report_values_per_day" in e for e in bad) and any("report_window_days" in e for e in bad)


def test_metric_aggregate_rows(fresh_emulator: Emulator) -> None:
    metric_id = fresh_emulator.account.metric_id("Placed Order")
    queries: list[dict[str, Any]] = [
        {"name": "orders_by_day", "metric_id": metric_id, "measurements": ["count", "sum_value"], "interval": "day"}
    ]
    config = config_for(
        fresh_emulator,
        start_date="2026-10-01T00:00:00+00:00",
        end_date="2026-10-15T00:00:00+00:00",
        metric_aggregate_queries=queries,
    )
    result: SyncResult = run_tap(config, catalog=select_only(config, {"metric_aggregate"}))
    rows = result.records["metric_aggregate"]
    assert rows and all(r["query_name"] == "orders_by_day" for r in rows)
    assert all("2026-10-01" <= r["date"][:10] < "2026-10-15" for r in rows)
    body = next(e.body for e in fresh_emulator.requests if e.template == "/api/metric-aggregates")
    assert body is not None
    assert "greater-or-equal(datetime,2026-10-01" in body and "less-than(datetime,2026-10-15" in body


def test_days_without_rows_still_move_the_bookmark(fresh_emulator: Emulator, virtual_pacing: FakeClock) -> None:
    campaigns = fresh_emulator.account.records("campaign")
    sends = [datetime.fromisoformat(c.attrs["send_time"]) for c in campaigns if c.attrs.get("send_time")]
    quiet = min(sends).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=10)
    config, catalog = per_day(fresh_emulator, "campaign_values_report", quiet, requests=2, lookback=0)
    first = run_tap(config, catalog=catalog)
    assert not first.records["campaign_values_report"], "no campaign sent yet: no rows"
    bookmark = first.state["bookmarks"]["campaign_values_report"]["replication_key_value"]
    assert bookmark == (quiet + timedelta(days=1)).isoformat()
    fresh_emulator.clear_log()
    run_tap(config, state=first.state, catalog=catalog)
    days = [timeframe(e)[0] for e in posts(fresh_emulator, "/api/campaign-values-reports")]
    assert days == [quiet + timedelta(days=1), quiet + timedelta(days=2), quiet + timedelta(days=3)]


def test_per_day_values_stopped_by_the_daily_cap_continue_next_run(
    fresh_emulator: Emulator, virtual_pacing: FakeClock
) -> None:
    day = campaign_send_day(fresh_emulator)
    config, catalog = per_day(fresh_emulator, "flow_values_report", day - timedelta(days=2), requests=2, lookback=0)
    first = run_tap(config, catalog=catalog)
    assert first.state["bookmarks"]["flow_values_report"]["replication_key_value"] == (day - timedelta(1)).isoformat()
    # Klaviyo's daily cap is spent (by another app): its 429 asks for hours.
    fresh_emulator.force(
        path_prefix="/api/flow-values-reports",
        responses=[ForcedResponse(status=429, retry_after=6 * 3600)],
        method="POST",
    )
    capped = run_tap(config, state=first.state, catalog=catalog)
    assert "flow_values_report stopped early" in capped.stderr and "resets at" in capped.stderr
    assert capped.state["bookmarks"]["flow_values_report"] == first.state["bookmarks"]["flow_values_report"]
    fresh_emulator.clear_log()
    run_tap(config, state=capped.state, catalog=catalog)
    days = [timeframe(e)[0] for e in posts(fresh_emulator, "/api/flow-values-reports")]
    assert days == [day - timedelta(days=1), day, day + timedelta(days=1)]
