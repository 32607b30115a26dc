"""JSON:API documents in, records out: decoding, timestamps, and the record shape every stream shares.

A record is a resource with its attributes lifted to the top level, its `id`, and one `<relationship>_id`
column per to-one relationship. Timestamps are UTC with a `+00:00` offset, the form Klaviyo's filters take.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import msgspec

_json_decoder = msgspec.json.Decoder()


def utc_iso(value: datetime) -> str:
    """Klaviyo's own timestamp form, in UTC: what filters take and what records carry."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat()


def normalize_timestamp(value: Any) -> Any:
    """Any ISO-8601 offset -> UTC `+00:00`; cheap when the value already is (the common case)."""
    if not isinstance(value, str) or value.endswith("+00:00"):
        return value
    if value.endswith("Z"):
        return value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return utc_iso(parsed)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


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
    """How one stream turns a resource into a record (built once per stream, applied per resource)."""

    def __init__(self, id_column: str, to_one: Iterable[tuple[str, str]], timestamps: Iterable[str]) -> None:
        self.id_column = id_column
        self.to_one = list(to_one)
        self.timestamps = list(timestamps)

    def __call__(self, resource: Any) -> dict[str, Any]:
        """Mutates the freshly parsed attributes instead of copying them."""
        if type(resource) is LeanResource:  # the hot path, without a method call per field
            record: dict[str, Any] = resource.attributes or {}
            record[self.id_column] = resource.id
            lean_relationships = resource.relationships
            if lean_relationships:
                for name, column in self.to_one:
                    relationship = lean_relationships.get(name)
                    data = relationship.data if relationship is not None else None
                    record[column] = data.get("id") if isinstance(data, dict) else None
        else:
            record = resource.get("attributes") or {}
            record[self.id_column] = resource.get("id")
            relationships = resource.get("relationships")
            if relationships:
                for name, column in self.to_one:
                    data = (relationships.get(name) or {}).get("data")
                    record[column] = data.get("id") if isinstance(data, dict) else None
        for column in self.timestamps:
            value = record.get(column)
            if value is not None:
                record[column] = normalize_timestamp(value)
        return record

    def ids(self, resource: Any) -> dict[str, Any]:
        """Just the id and relationship ids: enough to name a child's context."""
        record: dict[str, Any] = {"id": resource.get("id")}
        relationships = resource.get("relationships") or {}
        for name, column in self.to_one:
            relationship = relationships.get(name)
            data = relationship.get("data") if relationship is not None else None
            record[column] = data.get("id") if isinstance(data, dict) else None
        return record
