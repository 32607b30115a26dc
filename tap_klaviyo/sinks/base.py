"""The base sink: a BatchSink whose batch is written (and confirmed) in `process_batch`."""

from __future__ import annotations

from typing import Any, ClassVar

from singer_sdk.sinks import BatchSink
from typing_extensions import override

from tap_klaviyo.writing.contracts import WriteRun
from tap_klaviyo.writing.rows import RowError, jsonable


class KlaviyoSink(BatchSink):
    """Rows of one Klaviyo object. `write(rows)` returns only once every row is written or rejected."""

    name: ClassVar[str] = ""

    def __init__(self, target: Any, stream_name: str, schema: dict[str, Any], key_properties: Any) -> None:
        self.klaviyo: WriteRun = target  # the SDK keeps its own reference private
        super().__init__(target, stream_name, schema, key_properties)

    @property
    def what(self) -> str:
        return f"target-klaviyo {self.stream_name}"

    @property
    def dry_run(self) -> bool:
        return bool(self.config.get("dry_run"))

    @override
    def process_batch(self, context: dict[str, Any]) -> None:
        rows = [jsonable(row) for row in context.get("records", [])]
        self.write(rows)

    def write(self, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

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
