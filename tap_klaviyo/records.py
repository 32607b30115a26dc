"""JSON:API documents in, records out: decoding and the record shape every stream shares.

A record is a resource with its attributes lifted to the top level, its `id`, and one `<relationship>_id`
column per to-one relationship. Timestamps are UTC with a `+00:00` offset, the form Klaviyo's filters take.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from tap_klaviyo.timestamps import normalize_timestamp

_json_decoder = msgspec.json.Decoder()


class _Fields(msgspec.Struct):
    """Read like a dict (`.get`, `[]`) for the fields a struct has: one code path for lean and plain pages."""

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self.__struct_fields__ else default

    def __getitem__(self, key: str) -> Any:
        if key not in self.__struct_fields__:
            raise KeyError(key)
        return getattr(self, key)


class LeanRelationship(_Fields):
    data: Any = None


class LeanResource(_Fields):
    type: Any = None
    id: Any = None
    attributes: dict[str, Any] | None = None
    relationships: dict[str, LeanRelationship] | None = None


class LeanDocument(_Fields):
    """A JSON:API page decoded without the `links` of every resource and relationship, which the tap never
    reads: about half the objects of a plain decode, so half the CPU to build them and to free them."""

    data: list[LeanResource] | LeanResource | None = None
    included: list[LeanResource] | None = None
    links: dict[str, Any] | None = None
    meta: Any = None


class _Links(msgspec.Struct):
    links: dict[str, Any] | None = None


_lean_decoder = msgspec.json.Decoder(LeanDocument)
_links_decoder = msgspec.json.Decoder(_Links)


def decode(content: bytes, *, lean: bool = False) -> Any:
    """The parsed body (msgspec.DecodeError when it is not JSON). `lean`: a LeanDocument when the body has
    the JSON:API shape, else a plain dict."""
    if lean and content:
        try:
            return _lean_decoder.decode(content)
        except msgspec.ValidationError:
            pass
    return _json_decoder.decode(content) if content else {}


def next_link(content: bytes) -> str | None:
    """`links.next` alone: msgspec skips everything else of the body without building it."""
    try:
        links = _links_decoder.decode(content).links if content else None
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    following = (links or {}).get("next")
    return str(following) if following else None


def resources(doc: Any) -> list[Any]:
    """The page's primary resources as a list (a single resource endpoint answers one object)."""
    data = doc.get("data") if doc else None
    if data is None:
        return []
    return data if isinstance(data, list) else [data]


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

    def __call__(self, resource: Any) -> dict[str, Any]:
        """Mutates the freshly parsed attributes instead of copying them."""
        if type(resource) is LeanResource:  # the hot path, without a method call per field
            attributes = resource.attributes
            record: dict[str, Any] = attributes if type(attributes) is dict else {}
            record[self.id_column] = resource.id
            lean_relationships = resource.relationships or {}
            for name, column in self.to_one:
                relationship = lean_relationships.get(name)
                record[column] = linked_id(relationship.data if relationship is not None else None)
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

    def ids(self, resource: Any) -> dict[str, Any]:
        """Just the id and relationship ids: enough to name a child's context."""
        record: dict[str, Any] = {"id": resource.get("id")}
        relationships = resource.get("relationships")
        if not isinstance(relationships, dict):
            relationships = {}
        for name, column in self.to_one:
            relationship = relationships.get(name)
            record[column] = linked_id(relationship.get("data") if isinstance(relationship, dict) else None)
        return record


def linked_id(data: Any) -> str | None:
    """The id of a to-one linkage; None for a missing, null or partial one (`{"type": ...}` alone)."""
    if isinstance(data, dict):
        return id_text(data.get("id"))
    return None


def id_text(value: Any) -> str | None:
    """Klaviyo's ids are strings; a number is read as one, anything else (null, empty, an object) is none."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def linkages(data: Any) -> list[tuple[str, str]]:
    """(type, id) of every complete linkage in a relationship's `data` (a list, one object, or null)."""
    items = data if isinstance(data, list) else [data]
    out = []
    for item in items:
        if isinstance(item, dict):
            kind, found = item.get("type"), id_text(item.get("id"))
            if isinstance(kind, str) and found is not None:
                out.append((kind, found))
    return out


def objects_of(value: Any) -> list[dict[str, Any]]:
    """The objects of a list attribute (Klaviyo may send null, or null items, where the spec has a list)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def nested(value: Any, *keys: str) -> dict[str, Any]:
    """The object at `keys` inside `value`, or an empty one wherever a level is missing, null or not an object."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, dict) else {}
