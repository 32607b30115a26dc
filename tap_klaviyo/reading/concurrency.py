"""Fetch ahead on worker threads, hand results back in order.

The SDK emits records and state on one thread, one page at a time. Klaviyo's cursors cannot be
parallelised, but time windows, partitions and child fan-outs can: each becomes a job that fills a small
queue on its own thread, while the main thread drains the jobs strictly in order. State stays
single-threaded, and memory stays bounded whatever the size of the account: the job being drained holds
at most `buffer` pages, and jobs the main thread has not reached yet pause once the run's budget of
fetched-ahead JSON is spent.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_DONE = object()

#: JSON a run may hold for jobs the main thread has not reached yet (about four times that in memory).
MAX_HELD_BYTES = 8 * 1024 * 1024


class Waits:
    """Which worker threads the record writer (the main thread) waits on: the job it drains, and through it the
    job that one drains (a claimed stream's window being written). Their requests go first (`Slots`): every
    other fetch-ahead request only adds to what waits on disk, while the writer idles on these."""

    def __init__(self) -> None:
        self._writer = threading.main_thread()
        #: producer thread -> the thread draining it (threads, not their idents: an ident is reused)
        self._drained_by: dict[threading.Thread, threading.Thread] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def draining(self, producer: threading.Thread) -> Iterator[None]:
        """The calling thread drains `producer` for as long as the block lasts."""
        with self._lock:
            self._drained_by[producer] = threading.current_thread()
        try:
            yield
        finally:
            with self._lock:
                self._drained_by.pop(producer, None)

    def urgent(self) -> bool:
        """The calling thread is the writer, or the writer waits on it through a chain of drains."""
        thread: threading.Thread | None = threading.current_thread()
        with self._lock:
            for _ in range(8):  # a chain is two or three long: job, window
                if thread is self._writer:
                    return True
                thread = self._drained_by.get(thread) if thread is not None else None
                if thread is None:
                    return False
        return False


def draining(waits: Waits | None, producer: threading.Thread) -> contextlib.AbstractContextManager[None]:
    return waits.draining(producer) if waits is not None else contextlib.nullcontext()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def size_of(item: Any) -> int:
    """Bytes of JSON an item came from (pages carry it); 0 when unknown."""
    return int(getattr(item, "size", 0) or 0)


class Job(Generic[T]):
    """One sequential producer (e.g. the pages of one window) running on its own thread. It holds at most
    `buffer` results in memory; with `spill`, the rest go to disk (`spill` returns None when it cannot)."""

    def __init__(
        self,
        produce: Callable[[], Iterable[T]],
        buffer: int = 4,
        spill: Callable[[T], T | None] | None = None,
        on_done: Callable[[], None] | None = None,
        *,
        leading: bool = False,
    ) -> None:
        self._produce = produce
        self._buffer = buffer
        self._spill = spill
        self._on_done = on_done
        self.done = False
        self._queue: queue.SimpleQueue[tuple[object, bool]] = queue.SimpleQueue()
        self._held = 0  # results in memory not taken yet
        self._waiting = 0  # results not taken yet, in memory or on disk
        self._cond = threading.Condition()
        self._cancelled = threading.Event()
        #: Its results are being drained (it holds `buffer` of them in memory from now on).
        self.leading = leading
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _put(self, item: object, spillable: bool = True) -> bool:
        if not spillable:  # the end, or a failure: never held back
            with self._cond:
                self._waiting += 1
                self._queue.put((item, False))
            return True
        while not self._cancelled.is_set():
            with self._cond:
                if self._held < self._memory():
                    self._held += 1
                    self._waiting += 1
                    self._queue.put((item, True))
                    return True
            spilled = self._spill(item) if self._spill is not None else None  # type: ignore[arg-type]
            if spilled is not None:
                with self._cond:
                    self._waiting += 1
                    self._queue.put((spilled, False))
                return True
            with self._cond:
                if self._held >= self._memory():
                    self._cond.wait(0.2)
        return False

    def _run(self) -> None:
        try:
            for item in self._produce():
                if not self._put(item):
                    return
            self._put(_DONE, spillable=False)
        except BaseException as exc:  # handed to the consumer, which re-raises it in order
            self._put(_Failure(exc), spillable=False)
        finally:
            self.done = True
            if self._on_done is not None and not self._cancelled.is_set():
                self._on_done()

    def results(self) -> Iterator[T]:
        while True:
            item, in_memory = self._queue.get()
            with self._cond:
                self._waiting -= 1
                if in_memory:
                    self._held -= 1
                    self._cond.notify_all()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]

    def _memory(self) -> int:
        """Results it may hold in memory: with a spool, a job read ahead holds none (they go to disk), and only
        the one being drained holds `buffer`."""
        return self._buffer if self.leading or self._spill is None else 0

    def lead(self) -> None:
        """Its turn has come: results go to memory again, up to `buffer`."""
        with self._cond:
            self.leading = True
            self._cond.notify_all()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def waiting(self) -> int:
        """Results produced and not taken yet."""
        return self._waiting


def ordered(
    producers: Iterable[Callable[[], Iterable[T]]],
    ahead: int,
    buffer: int = 4,
    ready: int = 2,
    spill: Callable[[T], T | None] | None = None,
    *,
    waits: Waits | None = None,
) -> Iterator[T]:
    """Everything the producers yield, producer by producer, with up to `ahead` of them running at once; each
    holds `buffer` results in memory, and with `spill` puts the rest on disk rather than wait for the consumer.

    A new producer starts only while fewer than `ready` results wait for the consumer: when fetching is
    faster than emitting (low latency) fewer threads run, which costs less CPU than more of them contending
    for the GIL; when it is slower (high latency) all `ahead` run. With `spill`, fetching ahead is the point
    (requests are dear, disk is cheap): a producer that is done no longer counts, and the next one starts at
    once, whatever waits. With `waits`, the producer being drained is urgent while the consumer is.
    """
    if ahead <= 1:
        for produce in producers:
            yield from produce()
        return
    pending = iter(producers)
    running: deque[Job[T]] = deque()
    lock = threading.RLock()

    def top_up() -> None:
        with lock:
            while True:
                if spill is None:
                    busy = len(running) >= ahead or (bool(running) and sum(j.waiting() for j in running) >= ready)
                else:
                    busy = sum(1 for j in running if not j.done) >= ahead
                produce = None if busy else next(pending, None)
                if produce is None:
                    return
                on_done = top_up if spill is not None else None
                running.append(Job(produce, buffer, spill, on_done=on_done, leading=not running))

    top_up()
    try:
        while running:
            running[0].lead()
            with draining(waits, running[0].thread):
                for item in running[0].results():
                    yield item
                    top_up()
            with lock:
                running.popleft()
            top_up()
    finally:
        with lock:
            pending = iter(())
            for job in running:
                job.cancel()


class Budget:
    """Bytes of JSON fetched ahead of the main thread and not handed over yet, shared by every prefetch of
    a run. Unclaimed jobs pause while it is spent; the job the main thread is draining never waits for it."""

    def __init__(self, limit: int = MAX_HELD_BYTES) -> None:
        self.limit = limit
        self.used = 0
        self.cond = threading.Condition()

    def poke(self) -> None:
        with self.cond:
            self.cond.notify_all()


class _PrefetchJob(Generic[T]):
    """A prefetch job: an unbounded queue whose producer pauses while the run's budget is spent (with `spill`,
    it puts pages on disk instead, and pauses only when it cannot), or, once claimed, while `buffer` pages
    wait for the main thread."""

    def __init__(
        self,
        produce: Callable[[], Iterable[T]],
        budget: Budget,
        buffer: int,
        on_done: Callable[[], None],
        *,
        spill: Callable[[T], T | None] | None = None,
        spill_has_room: Callable[[], bool] = lambda: True,
    ) -> None:
        self._produce = produce
        self._spill_has_room = spill_has_room
        self._budget = budget
        self._buffer = buffer
        self._on_done = on_done
        self._spill = spill
        self._spilling = spill is not None
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._queued = 0
        self.claimed = False
        self.cancelled = False
        self.done = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _may_go_on(self) -> bool:
        if self.cancelled:
            return True
        if self.claimed:
            return self._queued < self._buffer
        # Past the budget only while the disk can take the next page: a full (or refused) spool pauses the job
        # before it fetches a page it would have to hold in memory.
        return (self._spilling and self._spill_has_room()) or self._budget.used < self._budget.limit

    def _to_disk(self, item: T) -> T:
        """Past the budget, before its turn: the page goes on disk (a page already there stays as it is)."""
        if not self._spilling or self.claimed or not size_of(item) or self._budget.used < self._budget.limit:
            return item
        assert self._spill is not None
        spilled = self._spill(item)
        if spilled is None:
            self._spilling = False  # full or refused: pause as without a spool
            return item
        return spilled

    def _run(self) -> None:
        cond = self._budget.cond
        try:
            for produced in self._produce():
                item = self._to_disk(produced)
                size = size_of(item)
                with cond:
                    if self.cancelled:
                        return
                    self._budget.used += size
                    self._queued += 1
                    self._queue.put(item)
                    cond.wait_for(self._may_go_on)
                    if self.cancelled:
                        return
            self._queue.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it in order
            self._queue.put(_Failure(exc))
        finally:
            self.done = True
            self._on_done()

    def results(self) -> Iterator[T]:
        self._budget.poke()
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            with self._budget.cond:
                self._queued -= 1
                self._budget.used -= size_of(item)
                self._budget.cond.notify_all()
            yield item  # type: ignore[misc]

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def cancel(self) -> None:
        """Stop producing and give back what was queued and never taken."""
        with self._budget.cond:
            self.cancelled = True
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _DONE and not isinstance(item, _Failure):
                    self._queued -= 1
                    self._budget.used -= size_of(item)
            self._budget.cond.notify_all()


class Prefetch(Generic[T]):
    """Jobs started early under a key and claimed later (partitions and children the SDK asks for one by one).

    At most `ahead` jobs run at once; a job that finished before it was claimed keeps its pages but no
    longer counts, so small children are all fetched while the main thread is still on a big one. What
    unclaimed jobs hold in memory is bounded by the run's `budget` (past it, `spill` puts pages on disk). Keys
    wait their turn in announcement order; a key claimed before its turn starts at once. Thread-safe: workers
    announce the children of the pages they fetch.
    """

    def __init__(
        self,
        ahead: int,
        buffer: int = 4,
        budget: Budget | None = None,
        spill: Callable[[T], T | None] | None = None,
        spill_has_room: Callable[[], bool] = lambda: True,
        *,
        waits: Waits | None = None,
    ) -> None:
        self._ahead = ahead
        self._waits = waits
        self._buffer = buffer
        self._budget = budget or Budget()
        self._spill = spill
        self._spill_has_room = spill_has_room
        self._jobs: dict[Hashable, _PrefetchJob[T]] = {}
        self._waiting: deque[tuple[Hashable, Callable[[], Iterable[T]]]] = deque()
        self._waiting_keys: set[Hashable] = set()
        self._lock = threading.RLock()

    def announce(self, key: Hashable, produce: Callable[[], Iterable[T]]) -> None:
        with self._lock:
            if self._ahead <= 1 or key in self._jobs or key in self._waiting_keys:
                return
            self._waiting.append((key, produce))
            self._waiting_keys.add(key)
            self._start_waiting()

    def announced(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._jobs or key in self._waiting_keys

    def _start(self, key: Hashable, produce: Callable[[], Iterable[T]]) -> _PrefetchJob[T]:
        job = _PrefetchJob(
            produce,
            self._budget,
            self._buffer,
            self._start_waiting,
            spill=self._spill,
            spill_has_room=self._spill_has_room,
        )
        self._jobs[key] = job
        return job

    def _start_waiting(self) -> None:
        with self._lock:
            while self._waiting and sum(1 for job in self._jobs.values() if not job.done) < self._ahead:
                key, produce = self._waiting.popleft()
                self._waiting_keys.discard(key)
                self._start(key, produce)

    def claim(self, key: Hashable) -> Iterator[T] | None:
        """The results of an announced job, or None (the caller then fetches itself)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None and key in self._waiting_keys:
                # Asked for before its turn: run it now, ahead of the queue.
                index = next(i for i, (waiting_key, _) in enumerate(self._waiting) if waiting_key == key)
                _, produce = self._waiting[index]
                del self._waiting[index]
                self._waiting_keys.discard(key)
                job = self._start(key, produce)
            if job is None:
                return None
            job.claimed = True
        return self._drain(key, job)

    def _drain(self, key: Hashable, job: _PrefetchJob[T]) -> Iterator[T]:
        try:
            with draining(self._waits, job.thread):
                yield from job.results()
        finally:
            with self._lock:
                self._jobs.pop(key, None)
            job.cancel()
            self._start_waiting()

    def close(self) -> None:
        """Drop what nobody will claim (e.g. children of parents the stream did not emit)."""
        with self._lock:
            jobs = list(self._jobs.values())
            self._jobs.clear()
            self._waiting.clear()
            self._waiting_keys.clear()
        for job in jobs:
            job.cancel()
