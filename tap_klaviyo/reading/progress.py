"""What a long sync tells the person watching it: progress lines on stderr and a summary table at the end.

Progress comes every `PROGRESS_INTERVAL_S` seconds for each stream that moved: records so far, requests,
records per second and, for streams read in time windows, how far through the range the emitted records
are. The summary lists records, requests, retries, 429s and seconds per stream. Both appear only when the
tap syncs (never for `--discover` or `--about`).

The SDK logs a METRIC line per partition and per child context (a flood with fan-out children); those are
kept back unless the log level is DEBUG, as are the SDK's per-context "Beginning sync" lines: the summary
carries the same counts per stream.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol

from klaviyo_core.timestamps import parse_utc

PROGRESS_INTERVAL_S = 30.0


class RunStats:
    """Counters of one stream. Requests are counted on worker threads (locked); records, positions and
    times on the main thread that emits them."""

    def __init__(self) -> None:
        self.records = 0
        self.requests = 0
        self.retries = 0
        self.throttled = 0
        #: Main-thread time spent on this stream (its own, not its children's): wall and process CPU seconds.
        self.busy = 0.0
        self.cpu = 0.0
        #: Set while the main thread is on this stream (monotonic, process time).
        self.since: tuple[float, float] | None = None
        #: Windowed streams: the range being read and the replication value of the last emitted record.
        self.range: tuple[datetime, datetime] | None = None
        self.position: str | None = None
        self._lock = threading.Lock()

    def add(self, *, requests_: int = 0, retries: int = 0, throttled: int = 0) -> None:
        """Counted by the thread that sends (any thread)."""
        with self._lock:
            self.requests += requests_
            self.retries += retries
            self.throttled += throttled

    def counted(
        self, records: Iterable[dict[str, Any]], *, selected: bool, position_key: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Records handed to the SDK to emit (main thread); `position_key`: the replication key of a stream read
        in windows, whose last emitted value says how far through its range the sync is."""
        for record in records:
            if selected:
                self.records += 1
            if position_key is not None:
                self.position = record.get(position_key) or self.position
            yield record

    def resume(self, now: float, cpu: float) -> None:
        self.since = (now, cpu)

    def pause(self, now: float, cpu: float) -> None:
        if self.since is not None:
            self.busy += now - self.since[0]
            self.cpu += cpu - self.since[1]
            self.since = None

    @property
    def seconds(self) -> float:
        """Wall seconds the sync spent on this stream: emitting it and waiting for its records."""
        since = self.since
        return self.busy + (time.monotonic() - since[0] if since is not None else 0.0)

    @property
    def cpu_seconds(self) -> float:
        return self.cpu

    def through(self) -> float | None:
        """Share of the window range behind the last emitted record (0..1), when known."""
        if self.range is None or not self.position:
            return None
        start, stop = self.range
        at = parse_utc(self.position)
        if at is None:
            return None
        total = (stop - start).total_seconds()
        if total <= 0:
            return None
        return min(1.0, max(0.0, (at - start).total_seconds() / total))


class Stopwatch:
    """Gives each second of the main thread to the stream it is on. The SDK syncs a child inside its parent's
    sync: while the child runs, the parent's clock stops, so neither counts the other's time."""

    def __init__(self) -> None:
        self.stack: list[RunStats] = []

    def begin(self, stats: RunStats) -> None:
        now, cpu = time.monotonic(), time.process_time()
        if self.stack:
            self.stack[-1].pause(now, cpu)
        self.stack.append(stats)
        stats.resume(now, cpu)

    def end(self, stats: RunStats) -> None:
        now, cpu = time.monotonic(), time.process_time()
        stats.pause(now, cpu)
        if stats in self.stack:
            self.stack.remove(stats)
        if self.stack:
            self.stack[-1].resume(now, cpu)


class Reported(Protocol):
    """A stream as the reporter sees it: a name and its counters."""

    @property
    def name(self) -> str: ...

    @property
    def stats(self) -> RunStats: ...


class Reporter:
    """Writes progress lines from a daemon thread while the sync runs, and the summary at the end."""

    def __init__(self, streams: Sequence[Reported], logger: logging.Logger, interval: float) -> None:
        self.streams = streams
        self.logger = logger
        self.interval = interval
        self.started = time.monotonic()
        self.cpu_started = time.process_time()
        self._stop = threading.Event()
        self._seen: dict[str, tuple[int, int]] = {}
        self._thread = threading.Thread(target=self._run, name="tap-klaviyo-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.progress()

    def progress(self) -> None:
        for stream in self.streams:
            stats = stream.stats
            now = (stats.records, stats.requests)
            if now == self._seen.get(stream.name, (0, 0)):
                continue
            self._seen[stream.name] = now
            rate = stats.records / stats.seconds if stats.seconds > 0 else 0.0
            line = (
                f"progress: {stream.name}: {stats.records:,} records, {stats.requests:,} requests, "
                f"{rate:,.0f} records/s"
            )
            share = stats.through()
            if share is not None and stats.range is not None:
                start, stop = stats.range
                line += f", {share:.0%} of {start:%Y-%m-%d %H:%M}..{stop:%Y-%m-%d %H:%M}"
            self.logger.info(line)

    def summary(self) -> None:
        """Records, requests (retries included), retries, 429s, and the seconds (wall, then process CPU) the sync
        spent on the stream itself: a child's time is the child's, and what workers fetched ahead costs a stream
        only the time it waited for it. The total row is the whole run's wall and CPU time."""
        rows = [s for s in self.streams if s.stats.records or s.stats.requests]
        width = max([len("stream"), *(len(s.name) for s in rows)])
        self.logger.info(
            "summary: %s",
            f"{'stream':<{width}} {'records':>10} {'requests':>9} {'retries':>8} {'429s':>6} {'seconds':>8} "
            f"{'cpu s':>7}",
        )
        records = requests = retries = throttled = 0
        for stream in rows:
            st = stream.stats
            records, requests = records + st.records, requests + st.requests
            retries, throttled = retries + st.retries, throttled + st.throttled
            self.logger.info(
                "summary: %s",
                f"{stream.name:<{width}} {st.records:>10,} {st.requests:>9,} {st.retries:>8,} {st.throttled:>6,} "
                f"{st.seconds:>8.1f} {st.cpu_seconds:>7.2f}",
            )
        wall = time.monotonic() - self.started
        cpu = time.process_time() - self.cpu_started
        self.logger.info(
            "summary: %s",
            f"{'total':<{width}} {records:>10,} {requests:>9,} {retries:>8,} {throttled:>6,} {wall:>8.1f} {cpu:>7.2f}",
        )
        peak = peak_memory_mb()
        if peak is not None:
            self.logger.info("summary: peak memory %.0f MB", peak)


def peak_memory_mb() -> float | None:
    """The process's peak resident memory since it started (Linux: VmHWM, which unlike ru_maxrss does not
    count the memory of the process that spawned it); None where neither is known."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


#: SDK lines a user can do nothing about, kept for DEBUG: suppression streams are unsorted by nature (their
#: state says so), a failed sync's own one-line error names the stream and endpoint that failed (which, for a
#: request fetched ahead, is not the stream the SDK was syncing when the error surfaced), and the start-up's
#: wiring (no settings from the environment unless asked; each child stream added to its parent) is the tap's.
_NOT_ACTIONABLE = (
    "Stream is assumed to be unsorted",
    "An unhandled error occurred while syncing",
    "Skipping parse of env var settings",
)


class _QuietContexts(logging.Filter):
    """Per-partition and per-child chatter of the SDK, kept for DEBUG."""

    def __init__(self) -> None:
        super().__init__()
        #: Loggers of the streams that have partitions or a parent.
        self.partitioned: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return True
        message = str(record.msg)
        if message.startswith(_NOT_ACTIONABLE):
            return False
        if message.startswith("Beginning sync of") and "with context keys" in message:
            return False
        if message.startswith("Added '") and "as child stream to" in message:
            return False
        # the state manager's start line of a partition or child (its stream has a parent or partitions)
        return not message.startswith("Starting incremental sync of") or record.name not in self.partitioned


def quiet_logger(name: str, partitioned: bool) -> None:
    """Keep a stream's per-partition chatter, and the SDK's per-context METRIC lines, for DEBUG. The filter
    lives on the SDK's logger (logging's own registry): one per process, found there, never kept here."""
    sdk_logger = logging.getLogger("singer_sdk")
    quiet = next((f for f in sdk_logger.filters if isinstance(f, _QuietContexts)), None)
    if quiet is None:
        quiet = _QuietContexts()
        sdk_logger.addFilter(quiet)
    if partitioned:
        quiet.partitioned.add(name)
    stream_logger = logging.getLogger(name)
    if quiet not in stream_logger.filters:
        stream_logger.addFilter(quiet)
