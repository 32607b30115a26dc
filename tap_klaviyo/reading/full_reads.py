"""Periodic full reads: how deletions in Klaviyo reach the loader.

An incremental read never sees a deleted list or a profile removed from one. So every few days (a setting per
kind of stream, `settings.FULL_READ_DEFAULTS`) a stream that can lose rows is read in full, as a first run
would read it. On such a run the stream reports FULL_TABLE through the SDK's public `replication_method`, so
the SDK stamps its records with a table version (`emit_activate_version_messages`); the ACTIVATE_VERSION that
tells the loader to drop older versions is held by the output (`output.SingerOutput`) and released only when
the stream's read is complete. Bookmarks still advance (the SDK advances them for INCREMENTAL only), and
`full_refresh_at` in the stream's state says when the last complete full read began.

Children (campaign_messages, flow_action, ...) follow the read of the stream they come from. Streams read in
full on every run (no replication key) always qualify; events and reports never lose rows and never do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol

from singer_sdk.helpers.types import Context
from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE, REPLICATION_INCREMENTAL

from klaviyo_core.timestamps import parse_utc
from tap_klaviyo.reading.output import SingerOutput
from tap_klaviyo.reading.run import KlaviyoRun
from tap_klaviyo.reading.settings import FULL_READ_DEFAULTS

#: Stream-state key: when the last complete full read of the stream began (ISO timestamp).
MARKER = "full_refresh_at"
#: The setting whose full reads happen whether or not the loader is told (memberships, as before).
ALWAYS = "membership_full_refresh_days"


class FullReadStream(Protocol):
    """A stream as its full reads see it: its declarations, catalog, state and where its records go."""

    @property
    def name(self) -> str: ...

    @property
    def full_read_setting(self) -> str | None: ...

    @property
    def replication_key(self) -> str | None: ...

    @property
    def parent_stream_type(self) -> Any: ...

    @property
    def selected(self) -> bool: ...

    @property
    def denied(self) -> bool: ...

    @property
    def config(self) -> Mapping[str, Any]: ...

    @property
    def tap_state(self) -> Mapping[str, Any]: ...

    @property
    def stream_state(self) -> dict[str, Any]: ...

    @property
    def stream_maps(self) -> Sequence[Any]: ...

    @property
    def state_manager(self) -> Any: ...

    def declared_replication_method(self) -> str: ...


class FullReadTap(Protocol):
    """The tap as full reads see it: its streams (a child follows its parent's read) and its writer."""

    @property
    def streams(self) -> Mapping[str, Any]: ...

    @property
    def message_writer(self) -> Any: ...


class FullReads:
    """One stream's full reads: decided once per run, kept as this object's state."""

    def __init__(self, stream: FullReadStream, run: KlaviyoRun, tap: FullReadTap, *, activate_version: bool) -> None:
        self.stream = stream
        self.run = run
        self.tap = tap
        #: emit_activate_version_messages, unless records go to batch files, which carry no table version: a
        #: loader would take every row of such a file for an old version and delete it.
        self.tells_loader = activate_version and not stream.config.get("batch_config")
        #: Set when the SDK begins this stream's sync (`begins`); before it nothing is decided, so a
        #: discovered catalog never says FULL_TABLE.
        self.armed = False
        self.decided: bool | None = None
        self.forced_known: bool | None = None
        self.method_known: str | None = None

    def begins(self) -> None:
        """The SDK starts this stream's sync (it asks for the signpost first): from now on, decide."""
        self.armed = True

    @property
    def deciding(self) -> bool:
        return self.armed or self.run.began

    @property
    def active(self) -> bool:
        """Whether this run reads the stream in full (and may tell the loader about deletions)."""
        parent = self.parent
        if parent is not None:
            return parent.active
        if not self.deciding:
            return False
        if self.decided is None:
            self.decided = self.due()
        return self.decided

    def due(self) -> bool:
        """Read once, when the sync begins: the stream's kind, its setting and when it was last read in full."""
        stream = self.stream
        setting = stream.full_read_setting
        if setting is None:
            return False
        if not stream.replication_key:
            return True  # read in full on every run anyway
        if self.run.end_date is not None:
            return False  # a run bounded by end_date is not a picture of the account
        if setting != ALWAYS and not self.tells_loader:
            return False  # nothing would tell the loader: not worth the requests
        days = float(stream.config.get(setting, FULL_READ_DEFAULTS.get(setting, 0)) or 0)
        if days <= 0:
            return False
        last = ((stream.tap_state.get("bookmarks") or {}).get(stream.name) or {}).get(MARKER)
        if not last:
            return True
        at = parse_utc(last)
        return at is None or self.run.started - at >= timedelta(days=days)  # an unreadable marker: read in full again

    @property
    def parent(self) -> FullReads | None:
        """The full reads of the stream this one's records come from, whose read it follows."""
        parent_type = self.stream.parent_stream_type
        if parent_type is None:
            return None
        reads: FullReads = self.tap.streams[parent_type.name].full_reads
        return reads

    @property
    def forced(self) -> bool:
        """An incremental stream (as the catalog may also say) read in full on this run: the SDK then neither
        filters nor bookmarks, so the start bound and the bookmark are set here. Asked several times per
        record, so kept once the run has decided."""
        if self.forced_known is not None:
            return self.forced_known
        forced = self.stream.declared_replication_method() == REPLICATION_INCREMENTAL and self.active
        if self.deciding:
            self.forced_known = forced
        return forced

    @property
    def replication_method(self) -> str:
        """The SDK's `replication_method`, asked for every record (its bookmark step): kept once decided."""
        if self.method_known is not None:
            return self.method_known
        method = REPLICATION_FULL_TABLE if self.forced else self.stream.declared_replication_method()
        if self.forced_known is not None:
            self.method_known = method
        return method

    @property
    def activate_version(self) -> bool:
        """The SDK's `emit_activate_version_messages`: only on a full read that a loader is told about."""
        return self.tells_loader and self.active

    def record(self, record: dict[str, Any] | None, context: Context | None) -> None:
        """Main thread, once per emitted record: advance the bookmark the SDK does not advance on FULL_TABLE."""
        stream = self.stream
        if record is None or not self.forced or not stream.selected:
            return
        assert stream.replication_key is not None
        stream.state_manager.increment_state(record, context=context, replication_key=stream.replication_key)

    def finished(self) -> None:
        """The SDK finalizes the stream (and its children) after a complete sync: release its ACTIVATE_VERSION,
        note when this full read began."""
        if not self.active or self.stopped_early:
            return
        writer = self.tap.message_writer
        if isinstance(writer, SingerOutput):
            for stream_map in self.stream.stream_maps:
                writer.release_version(stream_map.stream_alias)
        if self.stream.parent_stream_type is None and self.stream.replication_key:
            self.stream.stream_state[MARKER] = self.run.started_iso

    @property
    def stopped_early(self) -> bool:
        """This stream or one it comes from stopped with a warning (scope, budget): its read is not whole."""
        parent = self.parent
        return self.stream.denied or (parent is not None and parent.stopped_early)
