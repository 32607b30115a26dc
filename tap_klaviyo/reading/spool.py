"""Fetched-ahead pages kept on disk, so a big backfill fetches at its endpoint's pace without holding memory.

A stream fetched before its turn (profiles while events are written) and the time windows read ahead of the
one being written would otherwise pause once the run's memory budget is spent, and their endpoint's steady
window would pass unused: on a large account the profile backfill then starts its minute-long windows only
after the events are written. Pages past the budget go to unlinked temporary files instead, encoded as
msgpack, and are read back when the main thread writes their records.

The files are segments of `SEGMENT_BYTES`: a segment whose pages have all been read back is removed at once,
so the disk holds what is waiting, not what ever waited, and `SPOOL_LIMIT_BYTES` (or half the free space)
bounds what waits. A
10-million-event backfill passes through the spool several times its limit. The files are gone when the run
ends or the process dies; a full disk, or more than the limit waiting, only brings back the pause.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from typing import IO, Any

import msgspec

#: At most this much waiting on disk per run, and at most half the space free where it goes (beyond it,
#: fetching ahead pauses as it does without a spool). A 1,000,000-profile backfill fetched while 10,000,000
#: events are written waits there: about 5 GB.
SPOOL_LIMIT_BYTES = 16 * 1024**3
#: One file's size: the file goes once every page in it has been read back.
SEGMENT_BYTES = 64 * 1024**2


def default_limit(directory: str | None) -> int:
    """`SPOOL_LIMIT_BYTES`, or half the space free where the files go if that is less: the spool never
    takes the last of a shared disk."""
    try:
        free = shutil.disk_usage(directory or tempfile.gettempdir()).free
    except OSError:
        return SPOOL_LIMIT_BYTES  # a write that fails still ends spilling (`put`)
    return min(SPOOL_LIMIT_BYTES, free // 2)


class Segment:
    """One unlinked file of the spool, and how many of its pages have not been read back yet."""

    __slots__ = ("file", "sealed", "unread", "written")

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.written = 0
        self.unread = 0
        #: No more pages go in (a newer segment took over): it is removed when `unread` reaches 0.
        self.sealed = False


class Spilled:
    """A page of records on disk. Iterating reads it back (once: its segment may go after that); it holds no
    memory until then."""

    __slots__ = ("_count", "_length", "_offset", "_read", "_segment", "_spool")

    #: Bytes it holds in memory (what the fetch-ahead `Budget` counts).
    size = 0

    def __init__(self, spool: Spool, segment: Segment, offset: int, length: int, count: int) -> None:
        self._spool = spool
        self._segment = segment
        self._offset = offset
        self._length = length
        self._count = count
        self._read = False

    def load(self) -> list[dict[str, Any]]:
        if self._read:
            raise RuntimeError("a spilled page was read back twice (its disk space is given back after the first)")
        records = self._spool.read(self._segment, self._offset, self._length)
        self._read = True
        self._spool.release(self._segment)
        return records

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.load())

    def __len__(self) -> int:
        return self._count


#: A page of records handed between threads: in memory, or on disk until it is written.
Page = list[dict[str, Any]] | Spilled


class Spool:
    """One run's spill files, shared by every worker: appended under a lock, read back with `pread`, each
    segment removed once it is read back."""

    def __init__(
        self, limit: int | None = None, directory: str | None = None, segment_bytes: int = SEGMENT_BYTES
    ) -> None:
        self.limit = limit if limit is not None else default_limit(directory)
        self.directory = directory
        self.segment_bytes = segment_bytes
        #: Bytes on disk now (segments not removed yet); `peak` is the most it held.
        self.live = 0
        self.peak = 0
        #: Bytes and pages ever put on disk this run.
        self.written = 0
        self.pages = 0
        self.closed = False
        self._current: Segment | None = None
        self._segments: set[Segment] = set()
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(list[dict[str, Any]])
        self._lock = threading.Lock()

    @property
    def usable(self) -> bool:
        return not self.closed and self.live < self.limit

    def put(self, records: list[dict[str, Any]]) -> Spilled | None:
        """The page on disk, or None when the spool is full, closed or the disk refuses (keep it in memory)."""
        if not self.usable:
            return None
        try:
            data = self._encoder.encode(records)
        except (TypeError, msgspec.EncodeError):
            return None  # not plain JSON values: never expected, but memory still works
        with self._lock:
            if self.closed or self.live + len(data) > self.limit:
                return None
            try:
                segment = self._segment_for(len(data))
                os.pwrite(segment.file.fileno(), data, segment.written)
            except OSError:
                self.limit = self.live  # e.g. the disk is full: no more spilling until pages are read back
                return None
            offset = segment.written
            segment.written += len(data)
            segment.unread += 1
            self.live += len(data)
            self.peak = max(self.peak, self.live)
            self.written += len(data)
            self.pages += 1
        return Spilled(self, segment, offset, len(data), len(records))

    def _segment_for(self, length: int) -> Segment:
        """The segment the next `length` bytes go to (under the lock): a new one once the current is full."""
        current = self._current
        if current is not None and current.written and current.written + length > self.segment_bytes:
            current.sealed = True
            self._drop_if_read(current)
            self._current = current = None
        if current is None:
            file = tempfile.TemporaryFile(prefix="tap-klaviyo-spool-", dir=self.directory)  # noqa: SIM115 (closed when read back or by close())
            current = self._current = Segment(file)
            self._segments.add(current)
        return current

    def spill(self, page: Page) -> Page | None:
        """`put` for any page: one already on disk stays where it is (None: keep it as it is)."""
        return self.put(page) if isinstance(page, list) and page else None

    def read(self, segment: Segment, offset: int, length: int) -> list[dict[str, Any]]:
        with self._lock:
            if self.closed or segment not in self._segments:
                raise RuntimeError("the run's spool was closed before its pages were read")
            descriptor = segment.file.fileno()
        chunks: list[bytes] = []
        while length > 0:
            chunk = os.pread(descriptor, length, offset)
            if not chunk:
                raise OSError(f"the spool file ended early (offset {offset})")
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return self._decoder.decode(b"".join(chunks))

    def release(self, segment: Segment) -> None:
        """A page of `segment` was read back: the segment goes once it is sealed and every page is read."""
        with self._lock:
            segment.unread -= 1
            self._drop_if_read(segment)

    def _drop_if_read(self, segment: Segment) -> bool:
        """Under the lock: remove a sealed segment with nothing left to read (its disk space comes back)."""
        if not segment.sealed or segment.unread > 0 or segment not in self._segments:
            return False
        self._segments.discard(segment)
        self.live -= segment.written
        segment.file.close()
        return True

    def close(self) -> None:
        """The run is over: the files (unlinked already) go with their descriptors."""
        with self._lock:
            self.closed = True
            for segment in self._segments:
                segment.file.close()
            self._segments.clear()
            self._current = None
            self.live = 0
