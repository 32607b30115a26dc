"""The base sink: a BatchSink whose batch is checked on the reader's thread and written on its lane's workers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from singer_sdk.sinks import BatchSink
from typing_extensions import override

from target_klaviyo.writing.contracts import WriteRun
from target_klaviyo.writing.mirror import NOT_DELETED
from target_klaviyo.writing.pipeline import Unit
from target_klaviyo.writing.rows import RowError, jsonable

#: What the SDK stamps on each record when metadata is on (the row as read is what a reject shows).
STAMPED = (
    "_sdc_extracted_at",
    "_sdc_received_at",
    "_sdc_batched_at",
    "_sdc_sequence",
    "_sdc_sync_started_at",
    "_sdc_table_version",
)
DELETES_OFF = "deleting needs the allow_deletes setting: nothing was deleted"


class KlaviyoSink(BatchSink):
    """Rows of one Klaviyo object. `write(rows, unit)` checks them and hands each call or job to the lane as a
    part of the batch's unit; it returns before Klaviyo answers. Counts are given only once Klaviyo confirmed."""

    name: ClassVar[str] = ""
    #: Rows may carry `_sdc_deleted_at`: the SDK removes `_sdc_*` columns unless record metadata is on, so such
    #: a sink turns it on for itself and a deletion is never silently ignored.
    reads_deletions: ClassVar[bool] = False
    #: Sinks whose rows wait for other objects finish in this order at the end of the input.
    finish_rank: ClassVar[int] = 0

    def __init__(self, target: Any, stream_name: str, schema: dict[str, Any], key_properties: Any) -> None:
        self.klaviyo: WriteRun = target  # the SDK keeps its own reference private
        #: The ledger hold of the rows read since the last drain (None: no row yet).
        self.hold: int | None = None
        super().__init__(target, stream_name, schema, key_properties)
        target.sinks.append(self)

    @property
    def what(self) -> str:
        return f"target-klaviyo {self.stream_name}"

    @property
    def dry_run(self) -> bool:
        return bool(self.config.get("dry_run"))

    @property
    @override
    def include_sdc_metadata_properties(self) -> bool:
        return self.reads_deletions or super().include_sdc_metadata_properties

    @property
    def allow_deletes(self) -> bool:
        return bool(self.config.get("allow_deletes"))

    def deleting(self, row: dict[str, Any]) -> bool:
        """The row asks for a deletion (a RowError when the allow_deletes setting is off)."""
        if row.get("_sdc_deleted_at") is None:
            return False
        if not self.allow_deletes:
            raise RowError(DELETES_OFF)
        return True

    @override
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        ledger = self.klaviyo.ledger
        if self.hold is None:
            self.hold = ledger.open()
        ledger.count_row()
        super().process_record(record, context)

    @override
    def process_batch(self, context: dict[str, Any]) -> None:
        """Hand the batch on (the reader waits only when memory holds as much as it may)."""
        records = context.get("records", [])
        if self.reads_deletions:
            for row in records:
                for name in STAMPED:
                    row.pop(name, None)
                if row.get("_sdc_deleted_at") is None:
                    row.pop("_sdc_deleted_at", None)  # the SDK adds it to every row
        rows = [jsonable(row) for row in records]
        hold, self.hold = self.hold, None
        pipeline = self.klaviyo.pipeline
        pipeline.wait_for_room()
        unit = pipeline.unit(self.klaviyo.ledger.open() if hold is None else hold, len(rows))
        try:
            self.write(rows, unit)
        finally:
            unit.seal()

    def write(self, rows: list[dict[str, Any]], unit: Unit) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """The end of the input, every batch handed on: rows held for their references are written now."""

    def spawn(self, unit: Unit, function: Callable[..., None], *args: Any) -> None:
        """One part of the unit, run on this stream's workers."""
        self.klaviyo.pipeline.spawn(unit, self.stream_name, function, *args)

    def sent(self, unit: Unit, rows: int) -> None:
        self.klaviyo.pipeline.sent(unit, rows)

    def confirmed(self, rows: list[Any], failed: dict[int, str]) -> None:
        """A job is complete: the rows Klaviyo refused rejected with its reasons, the others written."""
        for position, reason in failed.items():
            if position < len(rows):
                self.reject(rows[position], reason)
        self.count("written", len(rows) - len(failed))

    def not_deleted(self, number: int) -> None:
        """An activated version leaves out `number` objects of the account, which allow_deletes would delete."""
        self.count(NOT_DELETED, number)
        self.logger.warning(
            "%s: the activated version leaves out %d objects of the account; allow_deletes is off, so nothing was "
            "deleted",
            self.stream_name,
            number,
        )

    def reject(self, row: dict[str, Any], reason: str) -> None:
        self.klaviyo.outcomes.reject(self.stream_name, row, reason)

    def count(self, outcome: str, number: int = 1) -> None:
        self.klaviyo.outcomes.count(self.stream_name, outcome, number)

    def checked(self, rows: list[dict[str, Any]], check: Any) -> list[tuple[dict[str, Any], Any]]:
        """(row, what `check(row)` made of it) for the rows it accepts; the others are rejected with its reason."""
        out = []
        for row in rows:
            try:
                out.append((row, check(row)))
            except RowError as exc:
                self.reject(row, str(exc))
        return out
