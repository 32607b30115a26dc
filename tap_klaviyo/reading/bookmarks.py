"""What STATE says: bookmarks that never pass the run's start and never move back behind where a run began.

The SDK moves a bookmark with every record. Two kinds of record would move it wrongly: one dated in the
future (the next run would skip everything between now and then), and one re-read behind the bookmark (the
lookback for late events, the second a strict filter steps back), which would move it back. Records are
emitted as they are; the STATE written out is clamped, so a run resumed from any STATE loses nothing.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from singer_sdk.helpers.types import Context
from typing_extensions import override


class BookmarkGuard:
    """Floors (the bookmark each partition started from) and the ceiling (the run's start)."""

    def __init__(self, ceiling: str) -> None:
        self.ceiling = ceiling
        #: (stream name, the partition's context as JSON) -> the bookmark it started from.
        self.floors: dict[tuple[str, str], str] = {}
        self.lock = threading.Lock()

    def partition_started(self, stream: Any, context: Context | None) -> None:
        """Main thread, as the SDK starts a stream or partition: remember the bookmark it starts from."""
        if not stream.replication_key or stream.arrives_with_parent:
            return
        state = stream.get_context_state(context)
        value = state.get("replication_key_value")
        if isinstance(value, str):
            with self.lock:
                self.floors[(stream.tap_stream_id, _context_key(state.get("context")))] = value

    def guard(self, tap_state: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of the state to write out, each bookmark within [its floor, the run's start]."""
        out = copy.deepcopy(dict(tap_state))
        for name, stream_state in (out.get("bookmarks") or {}).items():
            self._clamp(name, stream_state)
            for partition in stream_state.get("partitions") or []:
                self._clamp(name, partition)
        return out

    def _clamp(self, stream: str, state: dict[str, Any]) -> None:
        value = state.get("replication_key_value")
        if not isinstance(value, str) or not _looks_like_timestamp(value):
            return
        with self.lock:
            floor = self.floors.get((stream, _context_key(state.get("context"))))
        if floor is not None and value < floor:
            value = floor
        value = min(value, self.ceiling)
        state["replication_key_value"] = value


def _context_key(context: Any) -> str:
    """A partition's context as a key (its JSON, keys sorted): the same partition in the state and its copy."""
    return json.dumps(context, sort_keys=True, default=str)


def _looks_like_timestamp(value: str) -> bool:
    return len(value) >= 19 and value[4] == "-" and value[10] == "T"


class _NullValueNotes(logging.Filter):
    """Drops the SDK's per-record "New replication value is null" line: the stream counts such records and
    says so once, at its end (a real account can send thousands)."""

    MESSAGE = "New replication value is null"

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != self.MESSAGE


def quiet_null_value_notes() -> None:
    """Once per process: the SDK's state helper logs it on the `singer_sdk` logger itself."""
    logger = logging.getLogger("singer_sdk")
    if not any(isinstance(f, _NullValueNotes) for f in logger.filters):
        logger.addFilter(_NullValueNotes())
