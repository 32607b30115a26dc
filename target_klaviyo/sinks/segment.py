"""segment: segments matched by name, created with their definition and `is_starred`, updated when they
differ, deleted (with allow_deletes) on `_sdc_deleted_at`.

A definition names lists, segments and metrics by the source account's ids: each is translated through its
name (the input's `list`, `segment` and `metric` rows) to the target account's id. A row waits for names and
lists still to come, at the latest until the end of the input; what cannot be translated then (a list the
target account lacks, a metric no event has made there) rejects the row with that reason. Klaviyo creates and
updates at most 100 segments a day: the rows past it are rejected with that reason.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from typing_extensions import override

from target_klaviyo.sinks.base import KlaviyoSink
from target_klaviyo.sinks.objects import ObjectSink, Wanted, text_of
from target_klaviyo.writing.keyed import Known, delete_object
from target_klaviyo.writing.pipeline import Unit
from target_klaviyo.writing.references import SEGMENTS, Translator
from target_klaviyo.writing.rows import RowError


class SegmentSink(ObjectSink):
    name = "segment"
    collection = SEGMENTS
    depends_on = ("list",)
    cap_reason = (
        "Klaviyo's daily cap on segment creations and updates (100 a day) is reached: the segment was not "
        "written; run again tomorrow"
    )

    @cached_property
    def translator(self) -> Translator:
        return Translator(self.klaviyo.names, self.klaviyo.lists, self.klaviyo.objects, self.what)

    @override
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        """Segment names are noted when read: another segment's definition may name this one."""
        super().process_record(record, context)
        if record.get("_sdc_deleted_at") is None:
            self.klaviyo.names.note("segment", record)

    @override
    def parse(self, row: dict[str, Any]) -> Wanted:
        name = text_of(row, "name")
        if row.get("_sdc_deleted_at") is not None:
            return Wanted(name)
        if not isinstance(row.get("definition"), dict):
            raise RowError("no definition: a segment is created from its definition")
        return Wanted(name, {"is_starred": bool(row.get("is_starred"))}, extra={"definition": row["definition"]})

    @override
    def resolve(self, wanted: Wanted, final: bool) -> bool:
        if wanted.deleting:
            return True
        translated = self.translator.definition(wanted.extra["definition"], final)
        if translated is None:
            return False
        wanted.attributes["definition"] = translated
        return True

    @override
    def create(self, wanted: Wanted) -> Known:
        return self.post(SEGMENTS, {"type": "segment", "attributes": {"name": wanted.key, **wanted.attributes}})

    @override
    def update(self, known: Known, attributes: dict[str, Any]) -> None:
        self.patch(SEGMENTS, "segment", known, attributes)

    @override
    def delete(self, known: Known) -> None:
        delete_object(self.klaviyo.client, f"{SEGMENTS}/{known.id}", self.what)


class MetricSink(KlaviyoSink):
    """metric: never written (Klaviyo makes metrics from events); its rows name the ids that segment
    definitions refer to."""

    name = "metric"

    @override
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        super().process_record(record, context)
        self.klaviyo.names.note("metric", record)

    @override
    def write(self, rows: list[dict[str, Any]], unit: Unit) -> None:
        self.count("unchanged", len(rows))
        self.sent(unit, len(rows))
