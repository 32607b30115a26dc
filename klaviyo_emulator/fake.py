"""Schema-driven placeholder values, so every attribute the spec lists is present and well-typed.

Hand-written generators in :mod:`data` override the attributes that matter (timestamps, names, ids);
everything else comes from here, built once per resource type and shared between records.
"""

from __future__ import annotations

import functools
import zlib
from typing import Any

from .spec import Spec, get_spec

_STAMP = "2024-05-01T12:00:00+00:00"


def _pick(key: str, n: int) -> int:
    return zlib.crc32(key.encode()) % n if n else 0


def fake_value(spec: Spec, schema: dict[str, Any], key: str, depth: int = 0) -> Any:
    """A deterministic value valid against ``schema`` (first alternative of a oneOf/anyOf)."""
    schema = spec.flatten(schema)
    if schema.get("enum"):
        values = [v for v in schema["enum"] if v is not None] or schema["enum"]
        return values[_pick(key, len(values))]
    for combo in ("oneOf", "anyOf"):
        if combo in schema:
            options = schema[combo]
            typed = [o for o in options if spec.flatten(o).get("type") not in (None, "null")]
            return fake_value(spec, (typed or options)[0], key, depth)
    kind = schema.get("type")
    if kind is None and "properties" in schema:
        kind = "object"
    if kind == "object":
        if depth > 5:
            return {}
        required = set(schema.get("required", ()))
        out: dict[str, Any] = {}
        for name, sub in schema.get("properties", {}).items():
            flat = spec.flatten(sub)
            if name not in required and depth >= 3:
                continue
            if name not in required and flat.get("nullable") and depth >= 2:
                out[name] = None
                continue
            out[name] = fake_value(spec, sub, f"{key}.{name}", depth + 1)
        return out
    if kind == "array":
        if depth > 4:
            return []
        return [fake_value(spec, schema.get("items", {}), f"{key}[]", depth + 1)]
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return _STAMP
        if fmt == "date":
            return _STAMP[:10]
        if fmt in ("uri", "url"):
            return f"https://example.com/{key.rsplit('.', 1)[-1]}"
        if fmt == "email":
            return "someone@example.com"
        if fmt == "uuid":
            return "00000000-0000-4000-8000-000000000000"
        example = schema.get("example")
        if isinstance(example, str):
            return example
        default = schema.get("default")
        if isinstance(default, str):
            return default
        return key.rsplit(".", 1)[-1].strip("[]") or "value"
    if kind == "integer":
        example = schema.get("example")
        if isinstance(example, int) and not isinstance(example, bool):
            return example
        return int(schema.get("minimum", 1))
    if kind == "number":
        example = schema.get("example")
        if isinstance(example, (int, float)) and not isinstance(example, bool):
            return example
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return False
    return None


@functools.lru_cache(maxsize=256)
def _type_attribute_schemas(rtype: str) -> tuple[tuple[str, dict[str, Any]], ...]:
    spec = get_spec()
    merged: dict[str, dict[str, Any]] = {}
    for op in spec.operations:
        shapes = [op.data] if op.data is not None else []
        shapes += list(op.included.values())
        for shape in shapes:
            if shape is not None and shape.type == rtype:
                for name, sub in shape.attributes.items():
                    merged.setdefault(name, sub)
    return tuple(merged.items())


def attribute_names(rtype: str) -> list[str]:
    """Every attribute name any GET response lists for this resource type."""
    return [name for name, _ in _type_attribute_schemas(rtype)]


@functools.lru_cache(maxsize=256)
def default_attributes(rtype: str) -> dict[str, Any]:
    """Placeholder attributes for a resource type (shared; callers copy the top level)."""
    spec = get_spec()
    return {name: fake_value(spec, sub, f"{rtype}.{name}", 1) for name, sub in _type_attribute_schemas(rtype)}


def attribute_schema(rtype: str, name: str) -> dict[str, Any] | None:
    for attr, sub in _type_attribute_schemas(rtype):
        if attr == name:
            return sub
    return None
