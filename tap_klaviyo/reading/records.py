"""JSON:API documents in, records out: decoding and the record shape every stream shares.

A record is a resource with its attributes lifted to the top level, its `id`, and one `<relationship>_id`
column per to-one relationship. Timestamps are UTC with a `+00:00` offset, the form Klaviyo's filters take.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from klaviyo_core import spec
from klaviyo_core.documents import LeanResource, linked_id
from klaviyo_core.timestamps import normalize_timestamp


class RecordShape:
    """How one stream turns a resource into a record (built once per stream, applied per resource).

    Records are total over the schema's top-level properties: an attribute Klaviyo left out, a relationship it
    did not send, `attributes: null`, all become null columns, so every target sees the same columns.
    """

    def __init__(
        self,
        id_column: str,
        to_one: Iterable[tuple[str, str]],
        timestamps: Iterable[str],
        columns: Iterable[str] = (),
        on_unreadable: Callable[[str, Any], None] | None = None,
    ) -> None:
        self.id_column = id_column
        self.to_one = list(to_one)
        self.timestamps = list(timestamps)
        self.columns = frozenset(columns)
        self.on_unreadable = on_unreadable

    @classmethod
    def of_resource(
        cls,
        id_column: str,
        resource: dict[str, Any],
        columns: dict[str, Any],
        on_unreadable: Callable[[str, Any], None],
    ) -> RecordShape:
        """The shape of records made of this spec resource, with these schema properties."""
        to_one = [(n, spec.relationship_column(n)) for n in spec.to_one_relationships(resource)]
        timestamps = [k for k, v in columns.items() if v.get("format") == "date-time"]
        return cls(id_column, to_one, timestamps, columns=columns, on_unreadable=on_unreadable)

    def __call__(self, resource: Any) -> dict[str, Any]:
        """Mutates the freshly parsed attributes instead of copying them."""
        if type(resource) is LeanResource:  # the hot path, without a method call per field
            attributes = resource.attributes
            record: dict[str, Any] = attributes if type(attributes) is dict else {}
            record[self.id_column] = resource.id
            lean_relationships = resource.relationships or {}
            for name, column in self.to_one:
                relationship = lean_relationships.get(name)
                data = relationship.data if relationship is not None else None
                found = data.get("id") if type(data) is dict else None
                # A non-empty string id is what Klaviyo sends: taken as it is, without two calls per column.
                record[column] = found if type(found) is str and found else linked_id(data)
        else:
            attributes = resource.get("attributes") if isinstance(resource, dict) else None
            record = attributes if isinstance(attributes, dict) else {}
            record[self.id_column] = resource.get("id") if isinstance(resource, dict) else None
            relationships = resource.get("relationships") if isinstance(resource, dict) else None
            if not isinstance(relationships, dict):
                relationships = {}
            for name, column in self.to_one:
                relationship = relationships.get(name)
                record[column] = linked_id(relationship.get("data") if isinstance(relationship, dict) else None)
        for column in self.timestamps:
            value = record.get(column)
            if value is not None:
                normalized = normalize_timestamp(value)
                if normalized is None and self.on_unreadable is not None:
                    self.on_unreadable(column, value)
                record[column] = normalized
        return record

    def complete(self, record: dict[str, Any]) -> dict[str, Any]:
        """Every declared top-level column present (null when Klaviyo sent nothing)."""
        missing = self.columns - record.keys()
        for column in missing:
            record[column] = None
        return record
