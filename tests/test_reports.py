"""Reports: one row per (day, grouping), idempotent re-reads, Klaviyo's 1/s, 2/min, 225/day respected."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.conftest import config_for
from tests.emulator import Emulator, EmulatorConfig
from tests.emulator.server import ForcedResponse
from tests.harness import run_tap, select_only


def campaign_send_day(emu: Emulator) -> datetime:
    sends = [
        datetime.fromisoformat(c.attrs["send_time"])
        for c in emu.account.records("campaign")
        if c.attrs.get("send_time")
    ]
    day = max(s for s in sends if s < datetime.now(timezone.utc))
    return day.replace(hour=0, minute=0, second=0, microsecond=0)


def test_values_reports_respect_limits_and_rows_are_stable(tmp_path: Path) -> None:
    # Klaviyo's real limits on the server: the tap must pace itself and never see a 429.
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=1.0)) as emu:
        day = campaign_send_day(emu)
        config = config_for(emu, start_date=day.isoformat(), end_date=(day + timedelta(days=3)).isoformat())
        catalog = select_only(config, {"campaign_values_report"})
        first = run_tap(config, catalog=catalog)
        posts = [e for e in emu.requests if e.template == "/api/campaign-values-reports"]
        assert len(posts) == 3
        assert all(e.status == 200 for e in emu.requests), [e.status for e in emu.requests]
        times = [e.time for e in posts]
        for i, t in enumerate(times):
            assert len([u for u in times[: i + 1] if u > t - 60.0]) <= 2, "more than 2 a minute"
            assert len([u for u in times[: i + 1] if u > t - 1.0]) <= 1, "more than 1 a second"
        rows = first.records["campaign_values_report"]
        assert rows
        keys = [(r["date"], r["campaign_id"], r["campaign_message_id"], r["send_channel"]) for r in rows]
        assert len(keys) == len(set(keys))
        assert {r["date"][:10] for r in rows} <= {(day + timedelta(days=i)).date().isoformat() for i in range(3)}
        assert all(isinstance(r.get("opens"), int | float) for r in rows)

        # The same days read again give exactly the same rows (the key includes the day).
        again = run_tap(config, catalog=catalog)
        assert sorted(map(str, again.records["campaign_values_report"])) == sorted(map(str, rows))


def test_daily_cap_stops_only_the_report(fresh_emulator: Emulator) -> None:
    day = campaign_send_day(fresh_emulator)
    config = config_for(fresh_emulator, start_date=day.isoformat(), end_date=(day + timedelta(days=2)).isoformat())
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
    result = run_tap(config, catalog=select_only(config, {"metric_aggregate"}))
    rows = result.records["metric_aggregate"]
    assert rows and all(r["query_name"] == "orders_by_day" for r in rows)
    assert all("2026-10-01" <= r["date"][:10] < "2026-10-15" for r in rows)
    body = next(e.body for e in fresh_emulator.requests if e.template == "/api/metric-aggregates")
    assert body is not None
    assert "greater-or-equal(datetime,2026-10-01" in body and "less-than(datetime,2026-10-15" in body
