"""Singer output: msgspec-encoded lines, written in chunks and flushed when it matters.

The SDK's msgspec writer writes and flushes stdout for every message: a system call per record, and on a
threaded tap a chance for every other thread to take the GIL. Here lines collect in a buffer that is written
out every 64 KB, at each STATE message (flushed at once, so a target never sees a STATE before the records
it covers), at each SCHEMA message (`--test=schema` writes only those, and ends without the run's end) and at
least every second. A run that dies loses only records after its last STATE, which the
next run reads again.

ACTIVATE_VERSION goes out when a stream's full read is complete, not when it begins (`full_reads`): the SDK
writes it before the first record, and a loader that deletes then would lose rows on a run that fails.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from singer_sdk.contrib.msgspec import MsgSpecWriter, encoder
from singer_sdk.singerlib.encoding.simple import (
    ActivateVersionMessage,
    Message,
    RecordMessage,
    SchemaMessage,
    StateMessage,
)

CHUNK_BYTES = 64 * 1024
#: Records written more than this long ago go out even without a STATE (a live target sees progress).
FLUSH_INTERVAL_S = 1.0


class SingerOutput(MsgSpecWriter):
    """The tap's message writer (main thread only, like every Singer message)."""

    def __init__(self) -> None:
        super().__init__()
        self._pending = bytearray()
        self._last_flush = time.monotonic()
        #: What a STATE message says (the tap clamps bookmarks there); None: the state as it is.
        self.state_filter: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
        #: Stream -> table version of the ACTIVATE_VERSION held until the stream's read is complete.
        self.held_versions: dict[str, int] = {}
        #: Stream -> the bytes every RECORD line of the stream starts with.
        self.record_starts: dict[str, bytes] = {}

    def release_version(self, stream: str) -> bool:
        """Write the held ACTIVATE_VERSION of `stream` (its full read is complete); False if none is held."""
        version = self.held_versions.pop(stream, None)
        if version is None:
            return False
        self._pending += self.format_message(ActivateVersionMessage(stream=stream, version=version))
        self._after_write()
        return True

    def flush(self) -> None:
        if self._pending:
            stdout = sys.stdout.buffer  # looked up each time: tests redirect stdout
            stdout.write(self._pending)
            self._pending.clear()
        sys.stdout.flush()
        self._last_flush = time.monotonic()

    def _after_write(self) -> None:
        if len(self._pending) >= CHUNK_BYTES or time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S:
            self.flush()

    def write_message(self, message: Message) -> None:
        if type(message) is RecordMessage:
            self.write_record(message)
            return
        if isinstance(message, StateMessage):
            if self.state_filter is not None:
                message = StateMessage(value=self.state_filter(message.value))
            self._pending += self.format_message(message)
            self.flush()
            return
        if isinstance(message, ActivateVersionMessage):
            self.held_versions[message.stream] = message.version
            return
        if isinstance(message, RecordMessage):
            self.write_record(message)
            return
        self._pending += self.format_message(message)
        if isinstance(message, SchemaMessage):
            self.flush()
            return
        self._after_write()

    def write_record(self, message: RecordMessage) -> None:
        """The per-record hot path: the line's fixed start comes ready-made per stream and the record is encoded
        straight into the buffer (the same bytes as encoding the message as a whole)."""
        pending = self._pending
        start = self.record_starts.get(message.stream)
        if start is None:
            start = self.record_starts[message.stream] = b'{"type":"RECORD","stream":%s,"record":' % encoder.encode(
                message.stream
            )
        pending += start
        encoder.encode_into(message.record, pending, -1)
        if message.version is not None:
            pending += b',"version":'
            encoder.encode_into(message.version, pending, -1)
        if message.time_extracted is not None:
            pending += b',"time_extracted":'
            encoder.encode_into(message.time_extracted, pending, -1)
        pending += b"}\n"
        if len(pending) >= CHUNK_BYTES or time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S:
            self.flush()
