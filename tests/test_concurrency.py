"""Jobs run ahead on threads; results come back strictly in order; errors surface in order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from functools import partial

import pytest

from tap_klaviyo.reading.concurrency import Prefetch, ordered


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
