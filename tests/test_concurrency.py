"""Jobs run ahead on threads; results come back strictly in order; errors surface in order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from functools import partial

import pytest

from tap_klaviyo.reading.concurrency import Prefetch, Waits, ordered


def slow_range(start: int, stop: int, delay: float) -> Iterator[int]:
    for value in range(start, stop):
        time.sleep(delay)
        yield value


def test_ordered_keeps_order_and_overlaps_work() -> None:
    # Every producer waits until all eight run at once: they overlap, or the barrier breaks and the test fails.
    together = threading.Barrier(8, timeout=30)

    def producer(start: int) -> Iterator[int]:
        together.wait()
        yield from slow_range(start, start + 10, 0.001)

    values = list(ordered([partial(producer, i * 10) for i in range(8)], ahead=8))
    assert values == list(range(80))


def test_ordered_sequential_when_ahead_is_one() -> None:
    active = []
    lock = threading.Lock()
    current = [0]

    def producer(i: int) -> Iterator[int]:
        with lock:
            current[0] += 1
            active.append(current[0])
        yield i
        with lock:
            current[0] -= 1

    assert list(ordered([partial(producer, i) for i in range(5)], ahead=1)) == [0, 1, 2, 3, 4]
    assert max(active) == 1


def test_errors_surface_at_their_place() -> None:
    def failing() -> Iterator[int]:
        yield 100
        raise RuntimeError("boom")

    out = []
    with pytest.raises(RuntimeError, match="boom"):
        for value in ordered([lambda: iter([1, 2]), failing, lambda: iter([3])], ahead=3):
            out.append(value)
    assert out == [1, 2, 100]


def test_prefetch_claims_in_any_order_and_bounds_running_jobs() -> None:
    prefetch: Prefetch[int] = Prefetch(ahead=2)
    for key in range(5):
        prefetch.announce(key, partial(list, [key, key]))
    assert list(prefetch.claim(3) or []) == [3, 3]
    assert list(prefetch.claim(0) or []) == [0, 0]
    assert prefetch.claim(99) is None
    for key in (1, 2, 4):
        assert list(prefetch.claim(key) or []) == [key, key]


def test_the_writer_waits_on_the_window_it_drains_through_a_claimed_job() -> None:
    """A stream fetched ahead reads two windows on workers. Before the writer claims the stream nobody waits on
    them; once it does, the window being drained is urgent (its requests go first), the one read ahead is not
    until its turn."""
    waits = Waits()
    urgency: dict[str, list[bool]] = {"first": [], "second": []}
    claimed = threading.Event()

    def window(name: str) -> Iterator[str]:
        for page in range(3):
            if name == "first" and page == 1:
                assert claimed.wait(10)
            urgency[name].append(waits.urgent())
            yield f"{name}{page}"

    def stream() -> Iterator[str]:
        yield from ordered([partial(window, "first"), partial(window, "second")], ahead=2, buffer=1, waits=waits)

    prefetch: Prefetch[str] = Prefetch(2, waits=waits)
    prefetch.announce("events", stream)
    pages = prefetch.claim("events")
    assert pages is not None
    got = [next(pages)]
    claimed.set()
    got += list(pages)
    assert got == ["first0", "first1", "first2", "second0", "second1", "second2"]
    # The second window fetched its first two pages ahead (one page held, the next in hand); its third once the
    # writer drained it.
    assert urgency == {"first": [False, True, True], "second": [False, False, True]}
    assert waits.urgent(), "the writer itself"


def test_with_a_spool_only_the_job_being_drained_holds_results_in_memory() -> None:
    """A window read ahead puts every page on disk, its first too; the one being written keeps its own in
    memory. (A 10-million-event backfill has sixteen windows of 1,000-event pages: sixteen pages less.)"""
    spilled: list[int] = []

    def spill(item: int) -> int:
        spilled.append(item)
        return -item

    second_ended = threading.Event()

    def first() -> Iterator[int]:
        yield 1
        assert second_ended.wait(10)
        yield 2

    def second() -> Iterator[int]:
        yield from (10, 11, 12)
        second_ended.set()

    got = list(ordered([first, second], ahead=2, buffer=1, spill=spill))
    assert [abs(item) for item in got] == [1, 2, 10, 11, 12]
    assert got[0] == 1, "the job being drained keeps its page in memory"
    # Its second page goes to disk only if the first was not taken yet (a buffer of one).
    assert [item for item in spilled if item >= 10] == [10, 11, 12], "the job read ahead kept a page in memory"
