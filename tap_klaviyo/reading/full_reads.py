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

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk.helpers.types import Context
from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE, REPLICATION_INCREMENTAL
from typing_extensions import override

from klaviyo_core.timestamps import parse_utc
from tap_klaviyo.reading.output import SingerOutput
from tap_klaviyo.reading.settings import FULL_READ_DEFAULTS

if TYPE_CHECKING:
    from singer_sdk import Stream

    _Stream = Stream
else:
    _Stream = object

#: Stream-state key: when the last complete full read of the stream began (ISO timestamp).
MARKER = "full_refresh_at"
#: The setting whose full reads happen whether or not the loader is told (memberships, as before).
ALWAYS = "membership_full_refresh_days"


class FullReads(_Stream):
    """Mixin of the base stream: decides, once per run, whether this stream is read in full."""

    #: Setting naming the days between full reads; None: the stream never loses rows (events, reports).
    full_read_setting: ClassVar[str | None] = "full_read_days"

    #: Set when the SDK begins this stream's sync (`full_read_begins`); before it nothing is decided, so a
    #: discovered catalog never says FULL_TABLE.
    full_read_armed: bool = False
    full_read_forced_known: bool | None = None
    full_read_decided: bool | None = None

    if TYPE_CHECKING:  # KlaviyoStream's
        run: Any
        klaviyo_tap: Any

        @property
        def denied(self) -> bool: ...

    # -- the decision ------------------------------------------------------------------------------------

    def full_read_begins(self) -> None:
        """The SDK starts this stream's sync (it asks for the signpost first): from now on, decide."""
        self.full_read_armed = True

    @property
    def full_read(self) -> bool:
        """Whether this run reads the stream in full (and may tell the loader about deletions)."""
        parent = self.full_read_parent
        if parent is not None:
            return parent.full_read
        if not (self.full_read_armed or self.run.began):
            return False
        if self.full_read_decided is None:
            self.full_read_decided = self.full_read_due()
        return self.full_read_decided

    def full_read_due(self) -> bool:
        """Read once, when the sync begins: the stream's kind, its setting and when it was last read in full."""
        setting = self.full_read_setting
        if setting is None:
            return False
        if not self.replication_key:
            return True  # read in full on every run anyway
        if self.run.end_date is not None:
            return False  # a run bounded by end_date is not a picture of the account
        if setting != ALWAYS and not self.tells_loader:
            return False  # nothing would tell the loader: not worth the requests
        days = float(self.config.get(setting, FULL_READ_DEFAULTS.get(setting, 0)) or 0)
        if days <= 0:
            return False
        last = ((self.tap_state.get("bookmarks") or {}).get(self.name) or {}).get(MARKER)
        if not last:
            return True
        started: datetime = self.run.started
        at = parse_utc(last)
        return at is None or started - at >= timedelta(days=days)  # an unreadable marker: read in full again

    @property
    def full_read_parent(self) -> FullReads | None:
        """The stream this one's records come from, whose read it follows."""
        if self.parent_stream_type is None:
            return None
        parent = self.klaviyo_tap.streams[self.parent_stream_type.name]  # type: ignore[misc]
        assert isinstance(parent, FullReads)
        return parent

    @property
    def full_read_forced(self) -> bool:
        """An incremental stream (as the catalog may also say) read in full on this run: the SDK then neither
        filters nor bookmarks, so the start bound and the bookmark are set here. Asked several times per
        record, so kept once the run has decided."""
        known = self.full_read_forced_known
        if known is not None:
            return known
        forced = super().replication_method == REPLICATION_INCREMENTAL and self.full_read
        if self.full_read_armed or self.run.began:
            self.full_read_forced_known = forced
        return forced

    # -- the SDK's public hooks --------------------------------------------------------------------------

    @property
    @override
    def replication_method(self) -> str:
        """Asked for every record (the SDK's bookmark step): kept once the run has decided."""
        known = self.replication_method_known
        if known is not None:
            return known
        method = REPLICATION_FULL_TABLE if self.full_read_forced else str(super().replication_method)
        if self.full_read_forced_known is not None:
            self.replication_method_known = method
        return method

    replication_method_known: str | None = None

    @property
    @override
    def emit_activate_version_messages(self) -> bool:
        return self.tells_loader and self.full_read

    @property
    def tells_loader(self) -> bool:
        """emit_activate_version_messages, unless records go to batch files, which carry no table version: a
        loader would take every row of such a file for an old version and delete it."""
        return bool(super().emit_activate_version_messages) and not self.config.get("batch_config")

    def full_read_record(self, record: dict[str, Any] | None, context: Context | None) -> None:
        """Main thread, once per emitted record: advance the bookmark the SDK does not advance on FULL_TABLE."""
        if record is None or not self.full_read_forced or not self.selected:
            return
        assert self.replication_key is not None
        self.state_manager.increment_state(record, context=context, replication_key=self.replication_key)

    def full_read_finished(self) -> None:
        """The SDK finalizes the stream (and its children) after a complete sync: release its ACTIVATE_VERSION,
        note when this full read began."""
        if not self.full_read or self.full_read_stopped_early:
            return
        writer = self.klaviyo_tap.message_writer
        if isinstance(writer, SingerOutput):
            for stream_map in self.stream_maps:
                writer.release_version(stream_map.stream_alias)
        if self.parent_stream_type is None and self.replication_key:
            self.stream_state[MARKER] = self.run.started_iso

    @property
    def full_read_stopped_early(self) -> bool:
        """This stream or one it comes from stopped with a warning (scope, budget): its read is not whole."""
        parent = self.full_read_parent
        return self.denied or (parent is not None and parent.full_read_stopped_early)
