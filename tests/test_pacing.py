"""The pacer keeps every endpoint inside its burst and steady windows, across threads."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from klaviyo_core.pacing import (
    BURST_WINDOW_S,
    EDGE_S,
    FIXED_WINDOW_S,
    RESET_MARGIN_S,
    STEADY_WINDOW_S,
    DailyLimitReached,
    Limiter,
    Slots,
)


class FakeClock:
    """Time that only moves when someone sleeps: fast, exact tests of the windows."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += max(seconds, 0.0)


def acquired_times(limiter: Limiter, clock: FakeClock, count: int) -> list[float]:
    times = []
    for _ in range(count):
        limiter.acquire()
        times.append(clock.now)
    return times


def test_burst_and_steady_windows_hold() -> None:
    clock = FakeClock()
    limiter = Limiter("GET /api/flows", burst=3, steady=60, clock=clock, sleep=clock.sleep)
    times = acquired_times(limiter, clock, 130)
    for i, t in enumerate(times):
        in_burst = [u for u in times[: i + 1] if u > t - BURST_WINDOW_S + 1e-9]
        in_steady = [u for u in times[: i + 1] if u > t - STEADY_WINDOW_S + 1e-9]
        assert len(in_burst) <= 3
        assert len(in_steady) <= 60
    # And it is not slower than it must be: 130 requests need two full steady windows and a bit.
    assert times[-1] <= 2 * STEADY_WINDOW_S + 10 * BURST_WINDOW_S


def test_hold_pauses_every_caller() -> None:
    clock = FakeClock()
    limiter = Limiter("GET /api/lists", burst=75, steady=750, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.hold(5.0)
    limiter.acquire()
    assert clock.now >= 5.0


def test_daily_cap_raises_with_reset_time_and_resets_at_utc_midnight() -> None:
    """The day is the run's wall clock (fake here), never the machine's date: a run crossing midnight UTC
    starts a new day's count, whatever day the test runs on."""
    clock = FakeClock()
    before_midnight = datetime(2026, 3, 9, 23, 50, 0, tzinfo=timezone.utc)

    def wall() -> datetime:
        return before_midnight + timedelta(seconds=clock.now)

    limiter = Limiter(
        "POST /api/flow-values-reports", burst=1, steady=2, daily=3, clock=clock, sleep=clock.sleep, wall=wall
    )
    acquired_times(limiter, clock, 3)
    with pytest.raises(DailyLimitReached) as caught:
        limiter.acquire()
    assert caught.value.resets_at == datetime(2026, 3, 10, tzinfo=timezone.utc)
    assert "resets at 2026-03-10 00:00 UTC" in str(caught.value)
    clock.sleep(600.0)  # past midnight: a new day
    assert len(acquired_times(limiter, clock, 2)) == 2


def test_threads_share_one_limiter() -> None:
    import time

    limiter = Limiter("GET /api/test", burst=5, steady=1000)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(4):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    for i, t in enumerate(stamps):
        assert len([u for u in stamps[: i + 1] if u > t - BURST_WINDOW_S + 0.01]) <= 5


def test_quota_headers_pause_the_endpoint_until_reset() -> None:
    import requests

    from klaviyo_core.pacing import respect_quota_headers

    clock = FakeClock()
    limiter = Limiter("GET /api/lists", burst=75, steady=750, clock=clock, sleep=clock.sleep)
    spent = requests.Response()
    spent.headers.update({"RateLimit-Limit": "750", "RateLimit-Remaining": "0", "RateLimit-Reset": "7"})
    respect_quota_headers(spent, limiter)
    limiter.acquire()
    assert clock.now >= 7.0
    plenty = requests.Response()
    plenty.headers.update({"RateLimit-Remaining": "12", "RateLimit-Reset": "30"})
    before = clock.now
    respect_quota_headers(plenty, limiter)
    limiter.acquire()
    assert clock.now == before


def quota_response(limit: str | None, remaining: str | None, reset: str | None) -> Any:
    import requests

    response = requests.Response()
    response.status_code = 200
    for name, value in (("RateLimit-Limit", limit), ("RateLimit-Remaining", remaining), ("RateLimit-Reset", reset)):
        if value is not None:
            response.headers[name] = value
    return response


def test_limiter_adopts_the_limit_klaviyo_reports() -> None:
    """An account at a fifth of the published 75/s, 750/min: the limiter paces at 15/s and 150/min."""
    from klaviyo_core.pacing import respect_quota_headers

    clock = FakeClock()
    limiter = Limiter("GET /api/profiles", burst=75, steady=750, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    respect_quota_headers(quota_response("150", "149", "59"), limiter, sent_at=0.0)
    assert (limiter.burst, limiter.steady) == (15, 150)
    times = [0.0, *acquired_times(limiter, clock, 299)]
    for i, t in enumerate(times):
        assert len([u for u in times[: i + 1] if u > t - BURST_WINDOW_S + 1e-9]) <= 15
    # Klaviyo's minute is fixed and ends when the response said (59 s): 150 in it, 150 in the next.
    window_end = 59 + RESET_MARGIN_S
    assert len([u for u in times if u < window_end]) == 150
    assert len([u for u in times if window_end - EDGE_S <= u < window_end + FIXED_WINDOW_S]) <= 150
    assert times[149] < 10 * BURST_WINDOW_S  # the first 150 go at the learned burst, not one a second
    assert times[150] == pytest.approx(window_end)  # the next window's go when it opens
    assert times[299] < window_end + 10 * BURST_WINDOW_S


def test_a_new_fixed_window_opens_at_once_where_a_sliding_minute_would_wait() -> None:
    """60 a minute, spent in the first 20 s of the run; the server says its window ends at 40 s."""
    from klaviyo_core.pacing import respect_quota_headers

    clock = FakeClock()
    limiter = Limiter("GET /api/flow-actions/{id}/flow-messages", burst=3, steady=60, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    respect_quota_headers(quota_response("60", "59", "40"), limiter, sent_at=0.0)
    times = [0.0, *acquired_times(limiter, clock, 119)]
    assert times[59] < 25.0
    assert 40.0 < times[60] <= 40.0 + RESET_MARGIN_S + 0.01  # a sliding minute would wait until 61 s
    assert times[119] < 70.0
    # Never more than 60 in one of the server's windows (ending at 40 s, 100 s, ...), edges counted twice.
    for start in (-20.0, 40.0):
        assert len([u for u in times if start - EDGE_S <= u < start + FIXED_WINDOW_S]) <= 60


def test_remaining_caps_the_window_less_what_left_after_the_reporting_request() -> None:
    """Another app spent most of the minute: 5 left, and 2 of ours left after the request that was told."""
    from klaviyo_core.pacing import respect_quota_headers

    clock = FakeClock()
    limiter = Limiter("GET /api/lists", burst=75, steady=750, clock=clock, sleep=clock.sleep)
    limiter.acquire()  # the request the headers answer, sent at 0.0
    clock.sleep(0.1)
    acquired_times(limiter, clock, 2)  # in flight when the answer came
    respect_quota_headers(quota_response("750", "5", "20"), limiter, sent_at=0.0)
    assert (limiter.burst, limiter.steady) == (75, 750)
    times = acquired_times(limiter, clock, 4)
    assert times[:3] == [0.1, 0.1, 0.1]  # 5 - 2 = 3 more fit the window
    assert times[3] >= 20.1  # the fourth waits for the window to reset
    # An answer about the next window replaces the spent one.
    respect_quota_headers(quota_response("750", "700", "1"), limiter, sent_at=times[3])
    assert acquired_times(limiter, clock, 1)[0] == times[3]


def test_first_response_teaches_the_other_endpoints_the_accounts_ratio() -> None:
    from klaviyo_core.pacing import Pacer, respect_quota_headers
    from tests.fake_clock import FakeClock as RunClock

    pacer = Pacer(clock=RunClock())
    events = pacer.for_request("GET", "/api/events")
    flows = pacer.for_request("GET", "/api/flows")
    assert events is not None and flows is not None
    assert pacer.probe(lambda: None) is True
    respect_quota_headers(quota_response("700", "699", "30"), events, sent_at=0.0)
    pacer.probed(events, quota_response("700", "699", "30"))
    assert pacer.ratio == pytest.approx(0.2)
    assert pacer.probe(lambda: None) is False  # calibrated: nobody waits any more
    assert (events.burst, events.steady) == (70, 700)
    assert (flows.burst, flows.steady) == (1, 12)  # 3/s and 60/min published, a fifth of it
    later = pacer.for_request("GET", "/api/campaigns")
    assert later is not None and (later.burst, later.steady) == (2, 30)
    # The endpoint's own word wins over the guess.
    respect_quota_headers(quota_response("60", "59", "30"), flows, sent_at=0.0)
    assert (flows.burst, flows.steady) == (3, 60)


def test_a_freed_slot_goes_to_a_request_for_a_tight_endpoint_first() -> None:
    """A backfill request that queued first still lets a tight endpoint's request (60 a minute) go ahead."""
    slots = Slots(1)
    slots.acquire(tight=False, check_aborted=lambda: None)
    order: list[str] = []
    waiting = threading.Barrier(3)

    def request(name: str, tight: bool) -> None:
        waiting.wait()
        if tight:
            backfill_queued.wait(10)
            for _ in range(1000):  # the backfill is in the queue first
                if slots.waiting[2] == 1:
                    break
                threading.Event().wait(0.01)
        slots.acquire(tight=tight, check_aborted=lambda: None)
        order.append(name)
        slots.release()

    backfill_queued = threading.Event()
    threads = [
        threading.Thread(target=request, args=("backfill", False), daemon=True),
        threading.Thread(target=request, args=("tight", True), daemon=True),
    ]
    for thread in threads:
        thread.start()
    waiting.wait()
    backfill_queued.set()
    # Both are queued behind the held slot, the backfill first.
    for _ in range(1000):
        if slots.waiting == (1, 0, 1):
            break
        threading.Event().wait(0.01)
    assert slots.waiting == (1, 0, 1)
    slots.release()
    for thread in threads:
        thread.join(10)
    assert order == ["tight", "backfill"]


def test_a_freed_slot_goes_to_the_request_the_writer_waits_on_before_the_fetch_ahead() -> None:
    """Three fetch-ahead requests queue behind a held slot; one of them becomes urgent while it waits (the
    writer reached its window), and the freed slot goes to it, then to the others in any order."""
    slots = Slots(1)
    slots.acquire(tight=False, check_aborted=lambda: None)
    urgent_now = threading.Event()
    order: list[str] = []

    def request(name: str) -> None:
        slots.acquire(tight=False, check_aborted=lambda: None, urgent=lambda: name == "window" and urgent_now.is_set())
        order.append(name)
        slots.release()

    threads = [threading.Thread(target=request, args=(name,), daemon=True) for name in ("a", "window", "b")]
    for thread in threads:
        thread.start()
    for _ in range(1000):
        if slots.waiting == (0, 0, 3):
            break
        threading.Event().wait(0.01)
    assert slots.waiting == (0, 0, 3)
    urgent_now.set()
    for _ in range(1000):  # it is asked again when it wakes up (at most 0.2 s later)
        if slots.waiting == (0, 1, 2):
            break
        threading.Event().wait(0.01)
    assert slots.waiting == (0, 1, 2)
    slots.release()
    for thread in threads:
        thread.join(10)
    assert order[0] == "window" and sorted(order) == ["a", "b", "window"]


def test_slots_never_let_more_than_their_size_on_the_wire() -> None:
    slots = Slots(3)
    on_wire = 0
    most = 0
    lock = threading.Lock()

    def request(tight: bool) -> None:
        nonlocal on_wire, most
        slots.acquire(tight=tight, check_aborted=lambda: None)
        with lock:
            on_wire += 1
            most = max(most, on_wire)
        threading.Event().wait(0.005)
        with lock:
            on_wire -= 1
        slots.release()

    threads = [threading.Thread(target=request, args=(i % 3 == 0,)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert most == 3 and on_wire == 0


def test_a_new_windows_first_answer_replaces_the_count_near_its_opening() -> None:
    """Requests sent just before a window opened may count in it; the new window's first answer says."""
    from klaviyo_core.pacing import respect_quota_headers

    clock = FakeClock()
    limiter = Limiter("GET /api/lists", burst=100, steady=10, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    respect_quota_headers(quota_response("10", "9", "5"), limiter, sent_at=0.0)  # the window ends at 5 s
    clock.sleep(5.5)
    assert acquired_times(limiter, clock, 9) == [5.5] * 9  # the window's last 9, just before it ends
    opened = acquired_times(limiter, clock, 1)[0]
    assert opened == pytest.approx(5 + RESET_MARGIN_S)
    # Until told, the 9 sent at 5.5 s count in the new window too: one more would wait a whole minute ...
    assert limiter.try_acquire() > 50
    # ... but the server counted only this window's first request: 9 are left.
    respect_quota_headers(quota_response("10", "9", "59"), limiter, sent_at=opened)
    assert acquired_times(limiter, clock, 9) == [opened] * 9
    assert acquired_times(limiter, clock, 1)[0] >= 5 + 60


def test_answers_that_count_a_burst_mate_sent_after_them_do_not_shrink_the_window() -> None:
    """Three requests sent together, all counted by the server before it answered the first: the window's
    answers disagree by one about who spent what, and the limiter neither overspends nor gives up the window."""
    from klaviyo_core.pacing import respect_quota_headers

    clock = FakeClock()
    limiter = Limiter("GET /api/lists", burst=100, steady=10, clock=clock, sleep=clock.sleep)
    sent = []
    for _ in range(3):
        limiter.acquire()
        sent.append(clock.now)
        clock.sleep(0.01)
    for at in sent:
        respect_quota_headers(quota_response("10", "7", "50"), limiter, sent_at=at)
    more = acquired_times(limiter, clock, 7)
    in_window = [t for t in more if t < 50]
    assert 6 <= len(in_window) <= 7  # the server has 7 left; the min over answers would have allowed 5
