"""What the vendored Klaviyo OpenAPI spec says about each endpoint.

The spec is the single source for page sizes, filters, sorts, includes, scopes and rate limits, and for the
record schemas, so the tap never hard-codes a fact Klaviyo already publishes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from typing import Any

SPEC_FILE = "stable-2026-07-15.json"
SPEC_REVISION = "2026-07-15"

_RATE = re.compile(r"^(\d+)/([smd])$")
_FILTER_LINE = re.compile(r"`([^`]+)`: ((?:`[^`]+`(?:, )?)+)")

#: Requests per second / minute / day that Klaviyo allows an endpoint.
Rate = tuple[int, int, int | None]


@cache
def load_spec() -> dict[str, Any]:
    """Parse the spec once per process: it is 3 MB and every stream consults it."""
    text = resources.files("klaviyo_core.openapi").joinpath(SPEC_FILE).read_text(encoding="utf-8")
    spec: dict[str, Any] = json.loads(text)
    return spec


@dataclass(frozen=True)
class Endpoint:
    """The request rules of one operation, flattened from the spec."""

    method: str
    path: str
    scopes: tuple[str, ...]
    rate: Rate
    page_size: tuple[int, int, int] | None
    filters: dict[str, frozenset[str]] = field(default_factory=dict)
    sorts: frozenset[str] = frozenset()
    includes: frozenset[str] = frozenset()
    additional_fields: dict[str, frozenset[str]] = field(default_factory=dict)
    sparse_fields: dict[str, frozenset[str]] = field(default_factory=dict)
    params: frozenset[str] = frozenset()
    cursor: bool = False

    @property
    def max_page_size(self) -> int | None:
        return self.page_size[2] if self.page_size else None

    def lower_bound_operator(self, field_name: str) -> str:
        """Best 'from' operator for a bookmark: >= keeps ties; a greater-than-only field needs a margin."""
        ops = self.filters.get(field_name, frozenset())
        if "greater-or-equal" in ops:
            return "greater-or-equal"
        if "greater-than" in ops:
            return "greater-than"
        msg = f"{self.path} cannot filter {field_name} from below"
        raise ValueError(msg)

    def upper_bound_operator(self, field_name: str) -> str | None:
        ops = self.filters.get(field_name, frozenset())
        return "less-than" if "less-than" in ops else None


def _parse_rate(limits: dict[str, str] | None) -> Rate:
    per: dict[str, int] = {}
    for value in (limits or {}).values():
        match = _RATE.match(str(value).strip())
        if match:
            per[match.group(2)] = int(match.group(1))
    return per.get("s", 1), per.get("m", 15), per.get("d")


def _resolve(ref_or_obj: dict[str, Any]) -> dict[str, Any]:
    ref = ref_or_obj.get("$ref")
    if not ref:
        return _flatten_all_of(ref_or_obj) if "allOf" in ref_or_obj else ref_or_obj
    node: Any = load_spec()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    resolved: dict[str, Any] = node
    if ref_or_obj.get("nullable") and not resolved.get("nullable"):
        resolved = {**resolved, "nullable": True}
    return _flatten_all_of(resolved) if "allOf" in resolved else resolved


def _deep_merge(into: dict[str, Any], part: dict[str, Any]) -> None:
    for key, value in part.items():
        if key == "properties":
            props = into.setdefault("properties", {})
            for name, raw in value.items():
                sub = _resolve(raw)
                if name in props:
                    merged = dict(_resolve(props[name]))
                    _deep_merge(merged, sub)
                    props[name] = merged
                else:
                    props[name] = sub
        elif key != "allOf":
            into.setdefault(key, value)


def _flatten_all_of(node: dict[str, Any]) -> dict[str, Any]:
    """allOf parts merged into one object schema (Klaviyo composes member resources this way)."""
    merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
    for part in node["allOf"]:
        _deep_merge(merged, _resolve(part))
    merged.setdefault("type", "object")
    return merged


def _enum(param: dict[str, Any]) -> frozenset[str]:
    schema = param.get("schema", {})
    items = schema.get("items", schema)
    return frozenset(str(v) for v in items.get("enum", []))


def _filters(param: dict[str, Any], operation: dict[str, Any]) -> dict[str, frozenset[str]]:
    extension = operation.get("x-klaviyo-filters") or param.get("x-klaviyo-filters")
    if isinstance(extension, dict):
        out: dict[str, frozenset[str]] = {}
        for name, rule in extension.items():
            ops: set[str] = set()
            for group in (rule.get("operators") or {}).values():
                ops.update(group)
            out[name] = frozenset(ops)
        return out
    text = param.get("description", "")
    return {
        m.group(1): frozenset(op.strip("` ") for op in m.group(2).split(","))
        for m in _FILTER_LINE.finditer(text.split("Allowed field(s)/operator(s):", 1)[-1])
    }


def filter_values(path: str, field: str, method: str = "get") -> tuple[str, ...]:
    """The values the spec allows for `field` in the filter of `method path` (x-klaviyo-filters), in its order."""
    operation = load_spec()["paths"][path][method]
    rule = (operation.get("x-klaviyo-filters") or {}).get(field) or {}
    return tuple(str(v) for v in (rule.get("value") or {}).get("enum") or ())


@cache
def endpoint(path: str, method: str = "get") -> Endpoint:
    """Rules of `method path`, e.g. ``endpoint("/api/lists/{id}/profiles")``."""
    try:
        operation = load_spec()["paths"][path][method]
    except KeyError:
        msg = f"{method.upper()} {path} is not in Klaviyo's API (revision {SPEC_REVISION})"
        raise KeyError(msg) from None
    params = [_resolve(p) for p in operation.get("parameters", []) if _resolve(p).get("in") == "query"]
    by_name = {p["name"]: p for p in params}
    page_size = None
    if "page[size]" in by_name:
        schema = by_name["page[size]"].get("schema", {})
        page_size = (int(schema.get("default", 20)), int(schema.get("minimum", 1)), int(schema["maximum"]))
    return Endpoint(
        method=method.upper(),
        path=path,
        scopes=tuple(operation.get("x-klaviyo-scopes", [])),
        rate=_parse_rate(operation.get("x-klaviyo-ratelimit")),
        page_size=page_size,
        filters=_filters(by_name["filter"], operation) if "filter" in by_name else {},
        sorts=_enum(by_name["sort"]) if "sort" in by_name else frozenset(),
        includes=_enum(by_name["include"]) if "include" in by_name else frozenset(),
        additional_fields={n: _enum(p) for n, p in by_name.items() if n.startswith("additional-fields[")},
        sparse_fields={n: _enum(p) for n, p in by_name.items() if n.startswith("fields[")},
        params=frozenset(by_name),
        cursor="page[cursor]" in by_name,
    )


@lru_cache(maxsize=4096)
def match_path(path: str) -> str | None:
    """The spec template (``/api/lists/{id}``) that a concrete request path belongs to (asked for every request:
    pages of one collection or of one parent's children ask again and again)."""
    path = "/" + path.strip("/")
    parts = path.split("/")
    for template in load_spec()["paths"]:
        tparts = template.split("/")
        if len(tparts) == len(parts) and all(
            t == p or (t.startswith("{") and t.endswith("}")) for t, p in zip(tparts, parts, strict=True)
        ):
            return str(template)
    return None


# ---------------------------------------------------------------------------------------------------------
# Record schemas: attributes lifted to the top level, `id`, and one `<relationship>_id` per to-one relation.

_ANY_VALUE: dict[str, Any] = {}
_KEPT_FORMATS = {"date-time", "date"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if kind is None or schema is _ANY_VALUE:
        return schema
    types = kind if isinstance(kind, list) else [kind]
    if "null" not in types:
        types = [*types, "null"]
    return {**schema, "type": types}


def to_json_schema(node: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """OpenAPI 3.0 schema -> JSON Schema a Singer target can type: refs inlined, enums dropped, nullable."""
    node = _resolve(node)
    if depth > 12:
        return {}
    for key in ("oneOf", "anyOf"):
        if key in node:
            options = [to_json_schema(o, depth + 1) for o in node[key]]
            kinds = {t for o in options for t in _types(o)} - {"null"}
            if kinds == {"object"}:
                return {"type": ["object", "null"], "additionalProperties": True}
            if len(kinds) == 1:
                return _nullable({"type": sorted(kinds)[0]})
            return {}
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        props = node.get("properties")
        if not props:
            # Free-form objects (custom properties, event_properties): any keys, any value types.
            return {"type": ["object", "null"], "additionalProperties": True}
        return {
            "type": ["object", "null"],
            "properties": {k: to_json_schema(v, depth + 1) for k, v in props.items()},
        }
    if kind == "array":
        items = node.get("items")
        return {"type": ["array", "null"], "items": to_json_schema(items, depth + 1) if items else {}}
    if kind in {"string", "integer", "number", "boolean"}:
        out: dict[str, Any] = {"type": [kind, "null"]}
        if kind == "string" and node.get("format") in _KEPT_FORMATS:
            out["format"] = node["format"]
        return out
    return {}


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if kind is None:
        return ["any"]
    return kind if isinstance(kind, list) else [kind]


def resource_schema(path: str, method: str = "get") -> dict[str, Any]:
    """The JSON:API resource object that `method path` answers with (one item of `data`)."""
    operation = load_spec()["paths"][path][method]
    content = operation["responses"]["200"]["content"]
    document = _resolve(next(iter(content.values()))["schema"])
    data = _resolve(document["properties"]["data"])
    if data.get("type") == "array":
        data = _resolve(data["items"])
    return data


def included_resource(path: str, rtype: str, method: str = "get") -> dict[str, Any]:
    """The JSON:API resource of type `rtype` that `method path` may return in `included` (`include=`)."""
    operation = load_spec()["paths"][path][method]
    document = _resolve(next(iter(operation["responses"]["200"]["content"].values()))["schema"])
    items = _resolve(_resolve(document.get("properties", {}).get("included", {})).get("items", {}))
    for option in items.get("oneOf", [items]):
        resource = _resolve(option)
        if _type_of(resource) == rtype:
            return resource
    msg = f"{method.upper()} {path} includes no {rtype} resources (revision {SPEC_REVISION})"
    raise KeyError(msg)


def to_one_relationships(resource: dict[str, Any], *, overlay: bool = True) -> list[str]:
    """Names of the resource's to-one relationships (they become `<name>_id` columns), overlay included."""
    rels = _resolve(resource.get("properties", {}).get("relationships", {})).get("properties", {})
    names = []
    for name, rel in rels.items():
        data = _resolve(_resolve(rel).get("properties", {}).get("data", {}))
        if data.get("type") == "object" or "properties" in data:
            names.append(name)
    extra = overlay_for(_type_of(resource)).get("relationships", {}) if overlay else {}
    return [*names, *(name for name in extra if name not in names)]


def relationship_column(name: str) -> str:
    return name.replace("-", "_") + "_id"


def record_schema(
    path: str,
    method: str = "get",
    *,
    extra: dict[str, dict[str, Any]] | None = None,
    keep: tuple[str, ...] | None = None,
    overlay: bool = True,
) -> dict[str, Any]:
    """Singer schema of the records the tap emits for `path`, in the engine's record shape.

    `overlay=False` gives the spec's word alone (the generator compares the two to spot stale entries).
    """
    return resource_record_schema(resource_schema(path, method), extra=extra, keep=keep, overlay=overlay)


def resource_record_schema(
    resource: dict[str, Any],
    *,
    extra: dict[str, dict[str, Any]] | None = None,
    keep: tuple[str, ...] | None = None,
    overlay: bool = True,
) -> dict[str, Any]:
    """Singer schema of records made of `resource` (one of a response's `data` or `included`)."""
    attributes = _resolve(resource.get("properties", {}).get("attributes", {}))
    properties: dict[str, Any] = {"id": {"type": ["string"]}}
    for name, node in attributes.get("properties", {}).items():
        properties[name] = to_json_schema(node)
    if overlay:
        _apply_overlay(properties, overlay_for(_type_of(resource)).get("attributes", {}))
    for rel in to_one_relationships(resource, overlay=overlay):
        properties[relationship_column(rel)] = {"type": ["string", "null"]}
    properties.update(extra or {})
    if keep is not None:
        properties = {k: v for k, v in properties.items() if k in keep}
    return {"type": "object", "properties": properties}


def collection_paths() -> list[str]:
    """Every GET path that returns a list of resources (what `custom_streams` may name)."""
    out = []
    for path, item in load_spec()["paths"].items():
        get = item.get("get")
        if not get or not path.startswith("/api/"):
            continue
        try:
            schema = _resolve(next(iter(get["responses"]["200"]["content"].values()))["schema"])
        except (KeyError, StopIteration):
            continue
        if _resolve(schema.get("properties", {}).get("data", {})).get("type") == "array":
            out.append(path)
    return out


def request_attribute(path: str, name: str, method: str = "post") -> dict[str, Any]:
    """Schema of one attribute of a POST body's `data.attributes` (reports, metric aggregates)."""
    operation = load_spec()["paths"][path][method]
    body = _resolve(next(iter(operation["requestBody"]["content"].values()))["schema"])
    attributes = _resolve(_resolve(body["properties"]["data"])["properties"]["attributes"])
    return _resolve(attributes["properties"][name])


def request_enum(path: str, name: str, method: str = "post") -> list[str]:
    node = request_attribute(path, name, method)
    return [str(v) for v in _resolve(node.get("items", node)).get("enum", [])]


def resource_type(path: str, method: str = "get") -> str | None:
    """The JSON:API `type` of the resources `path` returns (what `fields[<type>]` is named after)."""
    return _type_of(resource_schema(path, method))


def _type_of(resource: dict[str, Any]) -> str | None:
    values = _resolve(resource.get("properties", {}).get("type", {})).get("enum") or []
    return str(values[0]) if values else None


# ---------------------------------------------------------------------------------------------------------
# The overlay: fields real responses carry that the spec omits (tap_klaviyo/schema_overlay.json).

OVERLAY_FILE = "schema_overlay.json"


@cache
def load_overlay() -> dict[str, dict[str, Any]]:
    """Resource type -> {"attributes": {dotted path: entry}, "relationships": {name: entry}}, checked."""
    text = resources.files("tap_klaviyo").joinpath(OVERLAY_FILE).read_text(encoding="utf-8")
    loaded: dict[str, dict[str, Any]] = json.loads(text)["resources"]
    for rtype, sections in loaded.items():
        for section, entries in sections.items():
            for name, entry in entries.items():
                where = f"{OVERLAY_FILE}: {rtype} {section} {name}"
                if section not in {"attributes", "relationships"}:
                    raise ValueError(f"{where}: unknown section (attributes or relationships)")
                if not str(entry.get("seen") or "").strip():
                    raise ValueError(f"{where}: says nowhere where it was seen")
                if section == "attributes" and not isinstance(entry.get("schema"), dict):
                    raise ValueError(f"{where}: has no schema")
    return loaded


def overlay_for(rtype: str | None) -> dict[str, Any]:
    return load_overlay().get(rtype or "", {})


def _apply_overlay(properties: dict[str, Any], attributes: dict[str, Any]) -> None:
    """Add each overlay attribute at its dotted path; the spec's own declaration, if any, wins."""
    for dotted, entry in attributes.items():
        *parents, leaf = dotted.split(".")
        node = properties
        for part in parents:
            parent = node.get(part)
            if not isinstance(parent, dict) or "properties" not in parent:
                msg = f"{OVERLAY_FILE}: {dotted}: {part} is not an object with properties in the spec"
                raise ValueError(msg)
            node = parent["properties"]
        node.setdefault(leaf, json.loads(json.dumps(entry["schema"])))
