"""Fetched-ahead pages kept on disk, so a big backfill fetches at its endpoint's pace without holding memory.

A stream fetched before its turn (profiles while events are written) and the time windows read ahead of the
one being written would otherwise pause once the run's memory budget is spent, and their endpoint's steady
window would pass unused: on a large account the profile backfill then starts its minute-long windows only
after the events are written. Pages past the budget go to one unlinked temporary file instead, encoded as
msgpack, and are read back when the main thread writes their records. The file is gone when the run ends or
the process dies; a full disk, or more than `SPOOL_LIMIT_BYTES`, only brings back the pause.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from typing import IO, Any

import msgspec

#: At most this much on disk per run (beyond it, fetching ahead pauses as it does without a spool).
SPOOL_LIMIT_BYTES = 4 * 1024**3

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[dict[str, Any]])


class Spilled:
    """A page of records on disk. Iterating reads it back; it holds no memory until then."""

    __slots__ = ("_count", "_length", "_offset", "_spool")

    #: Bytes it holds in memory (what the fetch-ahead `Budget` counts).
    size = 0

    def __init__(self, spool: Spool, offset: int, length: int, count: int) -> None:
        self._spool = spool
        self._offset = offset
        self._length = length
        self._count = count

    def load(self) -> list[dict[str, Any]]:
        return _decoder.decode(self._spool.read(self._offset, self._length))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.load())

    def __len__(self) -> int:
        return self._count


#: A page of records handed between threads: in memory, or on disk until it is written.
Page = list[dict[str, Any]] | Spilled


class Spool:
    """One run's spill file, shared by every worker: appended under a lock, read back with `pread`."""

    def __init__(self, limit: int = SPOOL_LIMIT_BYTES, directory: str | None = None) -> None:
        self.limit = limit
        self.directory = directory
        self.written = 0
        self.pages = 0
        self.closed = False
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def usable(self) -> bool:
        return not self.closed and self.written < self.limit

    def put(self, records: list[dict[str, Any]]) -> Spilled | None:
        """The page on disk, or None when the spool is full, closed or the disk refuses (keep it in memory)."""
        if not self.usable:
            return None
        try:
            data = _encoder.encode(records)
        except (TypeError, msgspec.EncodeError):
            return None  # not plain JSON values: never expected, but memory still works
        with self._lock:
            if self.closed or self.written + len(data) > self.limit:
                return None
            try:
                if self._file is None:
                    self._file = tempfile.TemporaryFile(prefix="tap-klaviyo-spool-", dir=self.directory)  # noqa: SIM115 (closed by close())
                os.pwrite(self._file.fileno(), data, self.written)
            except OSError:
                self.limit = self.written  # e.g. the disk is full: no more spilling this run
                return None
            offset = self.written
            self.written += len(data)
            self.pages += 1
        return Spilled(self, offset, len(data), len(records))

    def spill(self, page: Page) -> Page | None:
        """`put` for any page: one already on disk stays where it is (None: keep it as it is)."""
        return self.put(page) if isinstance(page, list) and page else None

    def read(self, offset: int, length: int) -> bytes:
        with self._lock:
            spill = self._file
        if spill is None or self.closed:
            raise RuntimeError("the run's spool was closed before its pages were read")
        chunks: list[bytes] = []
        while length > 0:
            chunk = os.pread(spill.fileno(), length, offset)
            if not chunk:
                raise OSError(f"the spool file ended early (offset {offset})")
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        """The run is over: the file (unlinked already) goes with its descriptor."""
        with self._lock:
            self.closed = True
            if self._file is not None:
                self._file.close()
                self._file = None
