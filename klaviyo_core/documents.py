"""JSON:API documents: pages decoded (lean where the tap reads little of them) and the linkages inside.

Nothing here knows of streams or sinks: the tap reads pages through it, the target reads its answers.
"""

from __future__ import annotations

from typing import Any

import msgspec

_json_decoder = msgspec.json.Decoder()
#: Numbers as the SDK's reader parsed them (a Decimal stays the number it was), anything else as its text.
_json_encoder = msgspec.json.Encoder(decimal_format="number", enc_hook=str)


def encode_document(value: Any) -> bytes:
    """A request body (or a held row) as JSON: 19.99 read from the input is sent as 19.99, not 19.989999..."""
    return _json_encoder.encode(value)


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
_json_skipper = msgspec.json.Decoder(msgspec.Raw)


def decode(content: bytes, *, lean: bool = False) -> Any:
    """The parsed body (msgspec.DecodeError when it is not JSON). `lean`: a LeanDocument when the body has
    the JSON:API shape, else a plain dict."""
    if lean and content:
        try:
            return _lean_decoder.decode(content)
        except msgspec.ValidationError:
            pass
    return _json_decoder.decode(content) if content else {}


def check_json(content: bytes) -> None:
    """Raises msgspec.DecodeError unless the body is JSON (msgspec checks what it skips without building it)."""
    if content:
        _json_skipper.decode(content)


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
