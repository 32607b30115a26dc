"""Fetch ahead on worker threads, hand results back in order.

The SDK emits records and state on one thread, one page at a time. Klaviyo's cursors cannot be
parallelised, but time windows, partitions and child fan-outs can: each becomes a job that fills a small
queue on its own thread, while the main thread drains the jobs strictly in order. Memory stays bounded
(each job holds at most `buffer` pages) and state stays single-threaded.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Job(Generic[T]):
    """One sequential producer (e.g. the pages of one window) running on its own thread."""

    def __init__(self, produce: Callable[[], Iterable[T]], buffer: int = 4) -> None:
        self._produce = produce
        self._queue: queue.Queue[object] = queue.Queue(maxsize=buffer)
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._cancelled.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._produce():
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it in order
            self._put(_Failure(exc))

    def results(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]

    def cancel(self) -> None:
        self._cancelled.set()


def ordered(producers: Iterable[Callable[[], Iterable[T]]], ahead: int, buffer: int = 4) -> Iterator[T]:
    """Everything the producers yield, producer by producer, with up to `ahead` of them running at once."""
    if ahead <= 1:
        for produce in producers:
            yield from produce()
        return
    pending = iter(producers)
    running: deque[Job[T]] = deque()

    def start_next() -> None:
        produce = next(pending, None)
        if produce is not None:
            running.append(Job(produce, buffer))

    for _ in range(ahead):
        start_next()
    try:
        while running:
            job = running.popleft()
            start_next()
            yield from job.results()
    finally:
        for job in running:
            job.cancel()


class Prefetch(Generic[T]):
    """Jobs started early under a key and claimed later (partitions and children the SDK asks for one by one).

    At most `ahead` jobs run at once; keys announced beyond that wait their turn in announcement order.
    """

    def __init__(self, ahead: int, buffer: int = 4) -> None:
        self._ahead = ahead
        self._buffer = buffer
        self._jobs: dict[Hashable, Job[T]] = {}
        self._waiting: deque[tuple[Hashable, Callable[[], Iterable[T]]]] = deque()
        self._waiting_keys: set[Hashable] = set()

    def announce(self, key: Hashable, produce: Callable[[], Iterable[T]]) -> None:
        if self._ahead <= 1 or key in self._jobs or key in self._waiting_keys:
            return
        self._waiting.append((key, produce))
        self._waiting_keys.add(key)
        self._start_waiting()

    def _start_waiting(self) -> None:
        while self._waiting and len(self._jobs) < self._ahead:
            key, produce = self._waiting.popleft()
            self._waiting_keys.discard(key)
            self._jobs[key] = Job(produce, self._buffer)

    def claim(self, key: Hashable) -> Iterator[T] | None:
        """The results of an announced job, or None (the caller then fetches itself)."""
        if key in self._waiting_keys:
            # Asked for before its turn: run it now, ahead of the queue.
            for index, (waiting_key, produce) in enumerate(self._waiting):
                if waiting_key == key:
                    del self._waiting[index]
                    self._waiting_keys.discard(key)
                    self._jobs[key] = Job(produce, self._buffer)
                    break
        job = self._jobs.get(key)
        if job is None:
            return None
        return self._drain(key, job)

    def _drain(self, key: Hashable, job: Job[T]) -> Iterator[T]:
        try:
            yield from job.results()
        finally:
            self._jobs.pop(key, None)
            job.cancel()
            self._start_waiting()

    def close(self) -> None:
        for job in self._jobs.values():
            job.cancel()
        self._jobs.clear()
        self._waiting.clear()
        self._waiting_keys.clear()
