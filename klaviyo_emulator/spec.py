"""Read the vendored Klaviyo OpenAPI spec once and expose what the emulator needs from it.

Everything the emulator enforces (paths, parameters, enums, filters, scopes, rate limits, response
shapes) comes from ``klaviyo_core/openapi/stable-2026-07-15.json`` so that it cannot drift from the spec
the tap is written against.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .undocumented import EXTRA_ATTRIBUTES, EXTRA_RELATIONSHIPS

REVISION = "2026-07-15"
SPEC_FILE = Path(__file__).resolve().parents[1] / "klaviyo_core" / "openapi" / f"stable-{REVISION}.json"

_METHODS = ("get", "post", "patch", "put", "delete")
_ALLOWED_RE = re.compile(r"`([^`]+)`: ((?:`[^`]+`(?:, )?)+)")
_OVERRIDE_RE = re.compile(
    r"Rate limits when using the `([^`=]+)=([^`]+)` parameter[^:]*:<br>Burst: `(\d+)/s`<br>Steady: `(\d+)/m`"
)


@dataclass(frozen=True)
class FilterRule:
    """Operators allowed on one filter field (x-klaviyo-filters, or the description text)."""

    field: str
    single: frozenset[str]
    lists: frozenset[str]
    none: frozenset[str]
    value_type: str | None = None  # "string", "date-time", "boolean", "number", "integer" or None
    enum: tuple[str, ...] | None = None

    @property
    def operators(self) -> frozenset[str]:
        return self.single | self.lists | self.none


@dataclass(frozen=True)
class RateLimit:
    """Requests allowed per 1-second burst window, 60-second steady window and UTC day."""

    burst: int
    steady: int
    daily: int | None = None


@dataclass(frozen=True)
class RateOverride:
    """A documented per-parameter rate limit (e.g. ``additional-fields[profile]=predictive_analytics``)."""

    param: str
    value: str
    limit: RateLimit


@dataclass(frozen=True)
class Relationship:
    """One relationship of a resource shape: to-one or to-many, and the target resource type."""

    name: str
    to_many: bool
    target: str | None


@dataclass(frozen=True)
class ResourceShape:
    """What a response resource of one type looks like for one operation."""

    type: str
    attributes: dict[str, dict[str, Any]]
    required_attributes: tuple[str, ...]
    relationships: dict[str, Relationship]
    has_links: bool = True


@dataclass
class Operation:
    """One (method, path template) of the spec with its pre-digested rules."""

    method: str
    template: str
    regex: re.Pattern[str]
    raw: dict[str, Any]
    query_params: dict[str, dict[str, Any]]
    header_params: dict[str, dict[str, Any]]
    scopes: tuple[str, ...]
    rate: RateLimit
    rate_overrides: tuple[RateOverride, ...]
    filters: dict[str, FilterRule] | None
    filter_required: bool
    page_size: tuple[int, int, int] | None
    sort_values: tuple[str, ...] | None
    list_enums: dict[str, frozenset[str]]
    data: ResourceShape | None = None
    collection: bool = False
    included: dict[str, ResourceShape] = field(default_factory=dict)

    @property
    def op_id(self) -> str:
        return str(self.raw.get("operationId", f"{self.method} {self.template}"))


def _parse_rate(text: str | None) -> int:
    if not text:
        return 0
    return int(str(text).split("/")[0])


class Spec:
    """Indexed view of the OpenAPI document."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.schemas: dict[str, Any] = raw["components"]["schemas"]
        self.operations: list[Operation] = []
        self._by_template: dict[str, dict[str, Operation]] = {}
        self._static: dict[tuple[str, str], Operation] = {}
        for template, item in raw["paths"].items():
            common = item.get("parameters", [])
            for method in _METHODS:
                op = item.get(method)
                if isinstance(op, dict):
                    operation = self._build(method.upper(), template, op, common)
                    self.operations.append(operation)
                    self._by_template.setdefault(template, {})[method.upper()] = operation
                    if "{" not in template:
                        self._static[(method.upper(), template)] = operation
        # Static templates first so "/api/profiles/x" never shadows a fixed path of the same length.
        self.operations.sort(key=lambda o: ("{" in o.template, o.template))
        self.type_paths: dict[str, str] = self._type_paths()

    # ---- schema helpers -------------------------------------------------------------------------
    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Follow ``$ref`` chains (internal refs only)."""
        seen = 0
        while "$ref" in schema:
            ref = schema["$ref"]
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            schema = self.schemas[ref.rsplit("/", 1)[-1]]
            if extra:
                schema = {**schema, **extra}
            seen += 1
            if seen > 50:
                raise ValueError(f"ref loop at {ref}")
        return schema

    def flatten(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Resolve refs and merge ``allOf`` parts (recursively for object properties)."""
        schema = self.resolve(schema)
        if "allOf" not in schema:
            return schema
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            merged = _merge(merged, self.flatten(part), self)
        return merged

    def shape(self, schema: dict[str, Any]) -> ResourceShape | None:
        """Digest a resource object schema into a :class:`ResourceShape`."""
        flat = self.flatten(schema)
        props = flat.get("properties", {})
        type_schema = self.resolve(props.get("type", {}))
        enum = type_schema.get("enum")
        if not enum:
            return None
        attrs_schema = self.flatten(props.get("attributes", {})) if "attributes" in props else {}
        attributes = {k: self.flatten(v) for k, v in attrs_schema.get("properties", {}).items()}
        rels: dict[str, Relationship] = {}
        rel_schema = self.flatten(props.get("relationships", {})) if "relationships" in props else {}
        for name, rel in rel_schema.get("properties", {}).items():
            rel_flat = self.flatten(rel)
            data = self.flatten(rel_flat.get("properties", {}).get("data", {}))
            to_many = data.get("type") == "array"
            item = self.flatten(data.get("items", {})) if to_many else data
            target_enum = self.resolve(item.get("properties", {}).get("type", {})).get("enum")
            rels[name] = Relationship(name, to_many, target_enum[0] if target_enum else None)
        # What real responses carry beyond the spec (see undocumented.py).
        for name, sub in EXTRA_ATTRIBUTES.get(str(enum[0]), {}).items():
            attributes.setdefault(name, sub)
        for name, target in EXTRA_RELATIONSHIPS.get(str(enum[0]), {}).items():
            rels.setdefault(name, Relationship(name, False, target))
        return ResourceShape(
            type=str(enum[0]),
            attributes=attributes,
            required_attributes=tuple(attrs_schema.get("required", [])),
            relationships=rels,
            has_links="links" in props,
        )

    # ---- operation lookup ----------------------------------------------------------------------
    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """Find the operation for a request path (``{id}`` matches one segment); trailing '/' allowed."""
        path = _norm_path(path)
        op = self._static.get((method.upper(), path))
        if op is not None:
            return op, {}
        for op in self.operations:
            if op.method != method.upper():
                continue
            m = op.regex.match(path)
            if m:
                return op, m.groupdict()
        return None

    def path_known(self, path: str) -> bool:
        """True when some method exists for this path (to answer 405 rather than 404)."""
        path = _norm_path(path)
        return any(op.regex.match(path) for op in self.operations)

    def operation(self, method: str, template: str) -> Operation:
        return self._by_template[template][method.upper()]

    # ---- building ------------------------------------------------------------------------------
    def _build(self, method: str, template: str, op: dict[str, Any], common: list[Any]) -> Operation:
        params = [self.resolve(p) for p in [*common, *op.get("parameters", [])]]
        query = {p["name"]: p for p in params if p.get("in") == "query"}
        headers = {p["name"].lower(): p for p in params if p.get("in") == "header"}
        rl = op.get("x-klaviyo-ratelimit") or {}
        rate = RateLimit(
            _parse_rate(rl.get("burst")), _parse_rate(rl.get("steady")), _parse_rate(rl.get("daily")) or None
        )
        overrides = tuple(
            RateOverride(m.group(1), m.group(2), RateLimit(int(m.group(3)), int(m.group(4))))
            for m in _OVERRIDE_RE.finditer(op.get("description", ""))
        )
        filters: dict[str, FilterRule] | None = None
        filter_required = False
        if "filter" in query:
            filters = self._filter_rules(op, query["filter"])
            filter_required = bool(query["filter"].get("required"))
        page_size = None
        if "page[size]" in query:
            sch = self.resolve(query["page[size]"].get("schema", {}))
            page_size = (
                int(sch.get("default", 20)),
                int(sch.get("minimum", 1)),
                int(sch.get("maximum", 100)),
            )
        sort_values = None
        if "sort" in query:
            sort_values = tuple(self.resolve(query["sort"].get("schema", {})).get("enum", ()))
        list_enums: dict[str, frozenset[str]] = {}
        for name, p in query.items():
            sch = self.resolve(p.get("schema", {}))
            if sch.get("type") == "array":
                items = self.resolve(sch.get("items", {}))
                if "enum" in items:
                    list_enums[name] = frozenset(items["enum"])
        regex = re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")
        operation = Operation(
            method=method,
            template=template,
            regex=regex,
            raw=op,
            query_params=query,
            header_params=headers,
            scopes=tuple(op.get("x-klaviyo-scopes") or ()),
            rate=rate,
            rate_overrides=overrides,
            filters=filters,
            filter_required=filter_required,
            page_size=page_size,
            sort_values=sort_values,
            list_enums=list_enums,
        )
        self._response_shapes(operation)
        return operation

    def _filter_rules(self, op: dict[str, Any], param: dict[str, Any]) -> dict[str, FilterRule]:
        xf = op.get("x-klaviyo-filters")
        rules: dict[str, FilterRule] = {}
        if xf:
            for name, spec in xf.items():
                ops = spec.get("operators", {})
                value = spec.get("value") or {}
                vtype = value.get("format") if value.get("format") == "date-time" else value.get("type")
                rules[name] = FilterRule(
                    field=name,
                    single=frozenset(ops.get("single", ())),
                    lists=frozenset(ops.get("list", ())),
                    none=frozenset(ops.get("none", ())),
                    value_type=vtype,
                    enum=tuple(value["enum"]) if "enum" in value else None,
                )
            return rules
        return parse_allowed_text(param.get("description", ""))

    def _response_shapes(self, operation: Operation) -> None:
        responses = operation.raw.get("responses", {})
        ok = next((responses[c] for c in sorted(responses) if c.startswith("2")), None)
        if not ok or "content" not in self.resolve(ok):
            return
        content = self.resolve(ok)["content"]
        media = content.get("application/vnd.api+json") or next(iter(content.values()))
        doc = self.flatten(media.get("schema", {}))
        props = doc.get("properties", {})
        if "data" not in props:
            return
        data = self.flatten(props["data"])
        if data.get("type") == "array":
            operation.collection = True
            data = self.flatten(data.get("items", {}))
        operation.data = self.shape(data)
        inc = props.get("included")
        if inc:
            items = self.flatten(self.flatten(inc).get("items", {}))
            for alt in items.get("oneOf", items.get("anyOf", [items])):
                sh = self.shape(alt)
                if sh is not None:
                    operation.included[sh.type] = sh

    def _type_paths(self) -> dict[str, str]:
        """Resource type -> collection path (``profile`` -> ``/api/profiles``), from ``GET /api/x/{id}``."""
        out: dict[str, str] = {}
        for op in self.operations:
            m = re.fullmatch(r"(/api/[a-z-]+)/\{(id|job_id)\}", op.template)
            if op.method == "GET" and m and op.data is not None and not op.collection:
                out.setdefault(op.data.type, m.group(1))
        return out


def _merge(a: dict[str, Any], b: dict[str, Any], spec: Spec) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if key == "properties" and "properties" in out:
            props = dict(out["properties"])
            for name, sub in value.items():
                if name in props:
                    left, right = spec.flatten(props[name]), spec.flatten(sub)
                    props[name] = (
                        _merge(left, right, spec)
                        if "properties" in left and "properties" in right
                        else {
                            **left,
                            **right,
                        }
                    )
                else:
                    props[name] = sub
            out["properties"] = props
        elif key == "required" and "required" in out:
            out["required"] = list(dict.fromkeys([*out["required"], *value]))
        else:
            out[key] = value
    return out


def _norm_path(path: str) -> str:
    path = path.split("?", 1)[0]
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return path


def parse_allowed_text(description: str) -> dict[str, FilterRule]:
    """Parse the "Allowed field(s)/operator(s)" list of a ``filter`` parameter description."""
    idx = description.find("Allowed field(s)/operator(s):")
    if idx < 0:
        return {}
    rules: dict[str, FilterRule] = {}
    for m in _ALLOWED_RE.finditer(description[idx:]):
        ops = frozenset(re.findall(r"`([^`]+)`", m.group(2)))
        rules[m.group(1)] = FilterRule(m.group(1), single=ops, lists=ops, none=frozenset())
    return rules


@functools.lru_cache(maxsize=1)
def get_spec() -> Spec:
    """The parsed vendored spec (parsed once per process)."""
    with SPEC_FILE.open("rb") as fh:
        return Spec(json.load(fh))
