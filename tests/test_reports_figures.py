"""The emulator's reports count its own events, as Klaviyo's do (by send date): what the tap reads of the
campaign and flow reports equals what the tap reads of the events and their attributions, summed here
independently. Fixed timeframes (`end_date` in the generated timeline): nothing depends on today."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from klaviyo_emulator import Emulator, EmulatorConfig
from tests.conftest import config_for
from tests.harness import SyncResult, run_tap, select_only

#: The values reports' year: the tap's trailing year before `end_date`.
VALUES_END = "2026-06-01T00:00:00+00:00"
#: Two 60-day daily series (the default two report requests a run).
SERIES = {"start_date": "2024-02-01T00:00:00+00:00", "end_date": "2024-05-01T00:00:00+00:00"}
RECIPIENTS = {"Received Email", "Received SMS", "Received Push"}
CONVERSION = "Placed Order"


def stamp(value: str) -> datetime:
    return datetime.fromisoformat(value)


class Account:
    """What the tap read of the account's events, metrics, attributions and campaigns."""

    def __init__(self, result: SyncResult) -> None:
        names = {m["id"]: m["name"] for m in result.records["metric"]}
        self.events = {e["id"]: {**e, "metric": names[e["metric_id"]]} for e in result.records["event"]}
        self.sent = {c["id"]: c["send_time"] for c in result.records["campaign"] if c.get("send_time")}
        by_event: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for attribution in result.records["event_attribution"]:
            by_event[attribution["event_id"]].append(attribution)
        self.attributions = by_event

    def credit(self, event_id: str) -> tuple[str, datetime] | None:
        """(message, the touch's datetime) an order is credited to: of Klaviyo's attributions, the latest touch."""
        found = [
            (stamp(self.events[a["attributed_event_id"]]["datetime"]), a["id"], a)
            for a in self.attributions.get(event_id, [])
            if a["attributed_event_id"] in self.events
        ]
        if not found:
            return None
        touched, _id, best = max(found, key=lambda f: f[:2])
        return str(best["campaign_message_id"] or best["flow_message_id"]), touched

    def credited_orders(self) -> dict[str, list[tuple[datetime, float]]]:
        """Per message: (touch datetime, value) of each order credited to it."""
        out: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
        for event in self.events.values():
            if event["metric"] == CONVERSION:
                credit = self.credit(event["id"])
                if credit is not None:
                    out[credit[0]].append((credit[1], float(event["event_properties"]["$value"])))
        return out

    def received(self, message: str) -> int:
        return sum(
            1
            for e in self.events.values()
            if e["metric"] in RECIPIENTS and (e["event_properties"] or {}).get("$message") == message
        )


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """The tiny account of its own: on the session's, other modules' report requests of the same minute leave
    `RateLimit-Remaining` at 0, and the tap then rightly waits for the reset (up to a minute)."""
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0)) as emu:
        yield emu


@pytest.fixture(scope="module")
def account(emulator: Emulator) -> Account:
    config = config_for(emulator)
    catalog = select_only(config, {"event", "event_attribution", "metric", "campaign"})
    return Account(run_tap(config, catalog=catalog))


def reports(emulator: Emulator, streams: set[str], **settings: Any) -> SyncResult:
    config = config_for(emulator, **settings)
    return run_tap(config, catalog=select_only(config, streams))


def test_campaign_values_are_the_orders_klaviyo_credited_to_campaigns_sent_in_the_timeframe(
    emulator: Emulator, account: Account
) -> None:
    rows = reports(emulator, {"campaign_values_report"}, end_date=VALUES_END).records["campaign_values_report"]
    orders = account.credited_orders()
    start, end = stamp(rows[0]["timeframe_start"]), stamp(rows[0]["timeframe_end"])
    assert end == stamp(VALUES_END)
    in_frame = 0
    for row in rows:
        message = row["campaign_message_id"]
        sent = start <= stamp(account.sent[row["campaign_id"]]) < end
        credited = orders.get(message, []) if sent else []
        assert row["conversion_value"] == round(sum(v for _t, v in credited), 2), row
        assert row["conversions"] == len(credited), row
        assert row["recipients"] == (account.received(message) if sent else 0), row
        in_frame += sent and bool(credited)
    assert in_frame, "a campaign sent in the year earned orders: the comparison above is not all zeros"


def test_flow_values_and_series_count_orders_at_the_send_they_are_credited_to(
    emulator: Emulator, account: Account
) -> None:
    orders = account.credited_orders()
    values = reports(emulator, {"flow_values_report"}, end_date=VALUES_END).records["flow_values_report"]
    start, end = stamp(values[0]["timeframe_start"]), stamp(values[0]["timeframe_end"])
    earned = 0.0
    for row in values:
        credited = [v for t, v in orders.get(row["flow_message_id"], []) if start <= t < end]
        assert row["conversion_value"] == round(sum(credited), 2), row
        earned += row["conversion_value"]
    assert earned > 0

    series = reports(emulator, {"flow_series_report"}, **SERIES).records["flow_series_report"]
    days: dict[str, float] = defaultdict(float)
    for row in series:
        days[row["flow_message_id"]] += row["conversion_value"]
    first, last = stamp(SERIES["start_date"]), stamp(SERIES["end_date"])
    expected = {
        message: round(sum(v for t, v in credited if first <= t < last), 2) for message, credited in orders.items()
    }
    assert {m: round(v, 2) for m, v in days.items() if v} == {m: v for m, v in expected.items() if v and m in days}
    assert any(days.values()), "orders credited to flow sends in those days"
