"""Singer output: msgspec-encoded lines, written in chunks and flushed when it matters.

The SDK's msgspec writer writes and flushes stdout for every message: a system call per record, and on a
threaded tap a chance for every other thread to take the GIL. Here lines collect in a buffer that is written
out every 64 KB, at each STATE message (flushed at once, so a target never sees a STATE before the records
it covers) and at least every second. A run that dies loses only records after its last STATE, which the
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
from singer_sdk.singerlib.encoding.simple import ActivateVersionMessage, Message, RecordMessage, StateMessage

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
            # The per-record hot path: encoded straight from the message's fields, no intermediate dict copy.
            line: dict[str, Any] = {"type": "RECORD", "stream": message.stream, "record": message.record}
            if message.version is not None:
                line["version"] = message.version
            if message.time_extracted is not None:
                line["time_extracted"] = message.time_extracted
            pending = self._pending
            encoder.encode_into(line, pending, len(pending))
            pending += b"\n"
        else:
            self._pending += self.format_message(message)
        self._after_write()
