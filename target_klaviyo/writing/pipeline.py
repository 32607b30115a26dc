"""Batches on their way to Klaviyo while the reader goes on reading.

A sink's `process_batch` checks its rows and hands the writing to a lane (worker threads of that sink), then
returns: the SDK's reader reads the next rows while Klaviyo works. Each batch is a `Unit`: it stays open
(its ledger hold with it) until every part of it (a call, a bulk job until Klaviyo completes it) is confirmed
or its rows rejected. The reader waits only when the rows queued for sending, or held for jobs in flight,
pass what memory allows, or at the end of the input.

A worker's failure (a refused key, a job Klaviyo cancelled) stops the run: the reader raises it at its next
step, and no STATE after the failed batch's rows is ever released.
"""

from __future__ import annotations

import queue
import threading
import zlib
from collections.abc import Callable
from typing import Any

import msgspec

from klaviyo_core.documents import encode_document
from target_klaviyo.writing.ledger import Ledger

#: Rows waiting to be sent (held as they were read) before the reader waits for some to go.
MAX_QUEUED_ROWS = 20_000
#: Compressed bytes of rows held for bulk jobs in flight (kept to name the rows a job reports as failed).
MAX_HELD_BYTES = 64 * 1024 * 1024


class HeldRows:
    """Input rows kept compressed while their job is in flight: only a failed row is ever looked at again."""

    def __init__(self, rows: list[Any]) -> None:
        self.blob = zlib.compress(encode_document(rows), 1)
        self.count = len(rows)

    def rows(self) -> list[Any]:
        return list(msgspec.json.decode(zlib.decompress(self.blob)))


class Unit:
    """One batch: open until each of its parts is done and the sink has said it has no more parts."""

    def __init__(self, pipeline: Pipeline, hold: int, queued_rows: int) -> None:
        self.pipeline = pipeline
        self.hold = hold
        self.queued_rows = queued_rows
        self.parts = 0
        self.sealed = False
        self.lock = threading.Lock()

    def add_part(self) -> None:
        with self.lock:
            self.parts += 1

    def part_done(self) -> None:
        with self.lock:
            self.parts -= 1
            done = self.sealed and self.parts == 0
        if done:
            self.pipeline.settle(self)

    def seal(self) -> None:
        """Every part is added: the unit settles when the last one is done (now, if none is left)."""
        with self.lock:
            self.sealed = True
            done = self.parts == 0
        if done:
            self.pipeline.settle(self)


class Lane:
    """Daemon worker threads of one sink (a run that fails never waits for their queue at exit)."""

    def __init__(self, name: str, workers: int, pipeline: Pipeline) -> None:
        self.tasks: queue.SimpleQueue[tuple[Unit, Callable[..., None], tuple[Any, ...]] | None] = queue.SimpleQueue()
        self.pipeline = pipeline
        #: Tasks queued or running (under the pipeline's condition).
        self.pending = 0
        self.threads = [
            threading.Thread(target=self.work, name=f"{name}-{n}", daemon=True) for n in range(max(1, workers))
        ]
        for thread in self.threads:
            thread.start()

    def work(self) -> None:
        while True:
            task = self.tasks.get()
            if task is None:
                return
            self.run(*task)
            del task  # a worker waiting for its next task holds no rows of its last one

    def run(self, unit: Unit, function: Callable[..., None], args: tuple[Any, ...]) -> None:
        try:
            if self.pipeline.failure is not None:
                return  # the run is ending: the unit stays open, so no STATE passes it
            try:
                function(*args)
            except BaseException as exc:  # the reader raises it: a worker has nobody else to tell
                self.pipeline.fail(exc)
                return
            unit.part_done()
        finally:
            self.pipeline.task_done(self)

    def stop(self) -> None:
        for _ in self.threads:
            self.tasks.put(None)


class Pipeline:
    """The run's lanes, its open units, and the limits on what waits in memory."""

    def __init__(self, ledger: Ledger, workers: int) -> None:
        self.ledger = ledger
        self.workers = workers
        self.lanes: dict[str, Lane] = {}
        self.failure: BaseException | None = None
        self.open_units = 0
        self.queued_rows = 0
        self.held_bytes = 0
        self.changed = threading.Condition()
        #: Set once the run ends (its lanes stopped; the job poller stops with it).
        self.closed = False

    def unit(self, hold: int, rows: int) -> Unit:
        """A batch of `rows` rows (read, not yet sent) under the sink's ledger hold."""
        with self.changed:
            self.open_units += 1
            self.queued_rows += rows
        return Unit(self, hold, rows)

    def spawn(self, unit: Unit, lane: str, function: Callable[..., None], *args: Any) -> None:
        """Run `function(*args)` on the lane's workers as one part of the unit."""
        self.raise_if_failed()
        with self.changed:
            found = self.lanes.get(lane)
            if found is None:
                found = self.lanes[lane] = Lane(lane, self.workers, self)
            found.pending += 1
        unit.add_part()
        found.tasks.put((unit, function, args))

    def task_done(self, lane: Lane) -> None:
        with self.changed:
            lane.pending -= 1
            self.changed.notify_all()

    def wait_lanes_idle(self, names: tuple[str, ...]) -> None:
        """Block until the named lanes have no task queued or running (a stream's rows referring to objects
        another stream writes wait for it at the end of the input)."""
        with self.changed:
            while any(self.lanes[n].pending for n in names if n in self.lanes) and self.failure is None:
                self.changed.wait(0.5)
        self.raise_if_failed()

    def sent(self, unit: Unit, rows: int) -> None:
        """Rows of the unit left memory's queue (sent, or handed to a job): the reader may read more."""
        with self.changed:
            unit.queued_rows -= rows
            self.queued_rows -= rows
            self.changed.notify_all()

    def hold_bytes(self, number: int) -> None:
        with self.changed:
            self.held_bytes += number
            self.changed.notify_all()

    def settle(self, unit: Unit) -> None:
        with self.changed:
            self.open_units -= 1
            self.queued_rows -= unit.queued_rows
            unit.queued_rows = 0
            self.changed.notify_all()
        self.ledger.close(unit.hold)

    def fail(self, exc: BaseException) -> None:
        with self.changed:
            if self.failure is None:
                self.failure = exc
            self.changed.notify_all()
        self.ledger.settled.set()  # the reader looks at the next line

    def raise_if_failed(self) -> None:
        failure = self.failure
        if failure is not None:
            self.close()
            raise failure

    def wait_for_room(self) -> None:
        """Block the reader while memory holds as much as it may (the endpoints are being spent meanwhile)."""
        with self.changed:
            while (self.queued_rows > MAX_QUEUED_ROWS or self.held_bytes > MAX_HELD_BYTES) and self.failure is None:
                self.changed.wait(0.5)
        self.raise_if_failed()

    def wait_until_settled(self) -> None:
        """Block until every unit is settled (the end of the input), or raise the failure that stopped one."""
        with self.changed:
            while self.open_units and self.failure is None:
                self.changed.wait(0.5)
        self.raise_if_failed()

    def close(self) -> None:
        with self.changed:
            if self.closed:
                return
            self.closed = True
            lanes = list(self.lanes.values())
        for lane in lanes:
            lane.stop()
