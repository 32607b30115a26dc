"""What `post_process` does to each record, on the main thread, before the SDK writes it.

Parent ids copied in, only the kept columns, records without their key or at or after end_date dropped
(uncounted), fields in no schema named once, timestamps completed, rows for derived children set aside, and on
a full read the bookmark the SDK would not move; last, where nothing after reads inside them, nested objects
encoded (reading/packing.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from singer_sdk.helpers.types import Context

from tap_klaviyo.reading.drift import DriftCheck
from tap_klaviyo.reading.full_reads import FullReads
from tap_klaviyo.reading.packing import NestedPacking, Packable
from tap_klaviyo.reading.progress import RunStats
from tap_klaviyo.reading.records import RecordShape
from tap_klaviyo.reading.shape_notes import ShapeNotes


class Finished(Packable, Protocol):
    """A stream as its finishing sees it: its declarations, selection and the collaborators it owns."""

    @property
    def context_columns(self) -> Sequence[str]: ...

    @property
    def keep_columns(self) -> Sequence[str] | None: ...

    @property
    def primary_keys(self) -> Sequence[str]: ...

    @property
    def replication_key(self) -> str | None: ...

    @property
    def selected(self) -> bool: ...

    @property
    def fanout(self) -> Any: ...  # its Fanout: derived children take rows out of the record


@dataclass
class Finishing:
    """One stream's record finishing; what it asks of the stream once per record is read once, at the first."""

    stream: Finished
    shape: RecordShape
    drift: DriftCheck
    notes: ShapeNotes
    stats: RunStats
    full_reads: FullReads
    end_date_iso: str | None
    packing: NestedPacking
    #: Read at the first record (the catalog is applied by then): the replication key, (key, end_date) when
    #: records from end_date on are dropped, and whether a selected child derives rows.
    bookmark: str | None = field(default=None, init=False)
    cut: tuple[str, str] | None = field(default=None, init=False)
    derives: bool = field(default=False, init=False)
    packs: bool = field(default=False, init=False)
    ready: bool = field(default=False, init=False)

    def prepare(self) -> None:
        key = self.stream.replication_key
        self.bookmark = key
        self.cut = (key, self.end_date_iso) if key and self.end_date_iso else None
        self.derives = bool(self.stream.fanout.derived_children)
        self.packs = self.packing.applies(self.stream)
        self.ready = True

    def __call__(self, row: dict[str, Any], context: Context | None) -> dict[str, Any] | None:
        if not self.ready:
            self.prepare()
        stream = self.stream
        record = row
        if context:
            for column in stream.context_columns:
                record[column] = context.get(column)
        if stream.keep_columns is not None:
            record = {k: record.get(k) for k in stream.keep_columns}
        for key in stream.primary_keys:
            if record.get(key) is None:
                self.notes.unkeyed += 1
                self.stats.records -= 1 if stream.selected else 0
                return None
        cut = self.cut
        if cut is not None and (record.get(cut[0]) or "") >= cut[1]:
            self.stats.records -= 1 if stream.selected else 0
            return None
        self.drift.check(record)
        self.shape.complete(record)
        if self.bookmark and record.get(self.bookmark) is None:
            self.notes.without_key += 1
        if self.derives:
            stream.fanout.derive(record)
        self.full_reads.record(record, context)  # deletions: bookmarks advance on a full read too
        if self.packs:
            self.packing.pack(record)  # last: everything above reads inside the objects
        return record
