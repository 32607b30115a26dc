"""Request validation derived from the vendored spec: pure functions, no server state.

``validate_request`` answers "would Klaviyo accept this request?" for one request, so a contract test can
run it over a whole request log; the server runs the same checks and answers 400 with the first problem.
"""

from __future__ import annotations

import functools
import json
import re
import zoneinfo
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from .cursor import decode_cursor
from .filters import (
    COMPARISONS,
    Condition,
    FilterError,
    Node,
    check_filter,
    conditions,
    parse_datetime,
    parse_filter,
)
from .spec import REVISION, FilterRule, Operation, get_spec

FIRST_REVISION = "2022-10-17"
_REVISION_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:\.[A-Za-z0-9_-]+)?$")
_INT_RE = re.compile(r"^\d+$")
# Filter fields a request must use where the spec marks ``filter`` required (from the descriptions:
# "A channel filter is required", "A coupon/coupons or a profile/profiles must be provided").
REQUIRED_FILTER_FIELDS: dict[str, tuple[str, ...]] = {
    "/api/campaigns": ("messages.channel",),
    "/api/coupon-codes": ("coupon.id", "profile.id"),
}
REPORT_TEMPLATES = (
    "/api/campaign-values-reports",
    "/api/flow-values-reports",
    "/api/flow-series-reports",
    "/api/form-values-reports",
    "/api/form-series-reports",
    "/api/segment-values-reports",
    "/api/segment-series-reports",
)
INTERVAL_MAX_DAYS = {"hourly": 7, "daily": 60, "monthly": 364}


@dataclass(frozen=True)
class Problem:
    """One reason to reject a request, with where it came from (for the JSON:API ``source``)."""

    message: str
    parameter: str | None = None
    pointer: str | None = None
    status: int = 400
    code: str = "invalid"


def match_operation(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """(spec path template, operation object) for a request, or None."""
    found = get_spec().match(method, path)
    if found is None:
        return None
    return found[0].template, found[0].raw


def validate_request(
    method: str,
    path: str,
    query_pairs: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    body: str | bytes | None = None,
) -> list[str]:
    """Every reason Klaviyo would reject this request (empty list = valid)."""
    found = get_spec().match(method, path)
    if found is None:
        if get_spec().path_known(path):
            return [f"Method {method.upper()} is not allowed on {path}"]
        return [f"No operation {method.upper()} {path} in the spec"]
    op = found[0]
    problems = header_problems(headers, op) + query_problems(op, query_pairs) + body_problems(op, body)
    return [p.message for p in problems]


# ---- headers -------------------------------------------------------------------------------------
def header_problems(headers: Mapping[str, str], op: Operation | None = None) -> list[Problem]:
    lower = {k.lower(): v for k, v in headers.items()}
    out: list[Problem] = []
    if not lower.get("authorization") and (op is None or op.scopes):
        out.append(
            Problem(
                "Authentication credentials were not provided.",
                pointer="/data",
                status=401,
                code="not_authenticated",
            )
        )
    problem = revision_problem(lower.get("revision"), op)
    if problem:
        out.append(problem)
    return out


def revision_problem(value: str | None, op: Operation | None = None) -> Problem | None:
    """The ``revision`` header: required, ``YYYY-MM-DD[.suffix]``, a real date, not newer than the spec."""
    required = op is None or bool(op.header_params.get("revision", {}).get("required", True))
    if value is None or value == "":
        if not required:
            return None
        return Problem("The revision header is required (format: YYYY-MM-DD[.suffix]).", parameter="revision")
    m = _REVISION_RE.match(value.strip())
    if not m:
        return Problem(f"Invalid revision '{value}': expected format YYYY-MM-DD[.suffix].", parameter="revision")
    try:
        when = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return Problem(f"Invalid revision '{value}': not a date.", parameter="revision")
    if when > date.fromisoformat(REVISION):
        return Problem(f"Invalid revision '{value}': newer than the latest revision {REVISION}.", parameter="revision")
    if when < date.fromisoformat(FIRST_REVISION):
        return Problem(
            f"Invalid revision '{value}': older than the first revision {FIRST_REVISION}.",
            parameter="revision",
        )
    return None


# ---- query ---------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def cached_filter(text: str) -> Node:
    """Parsed filter (cached: clients repeat the same filter on every page)."""
    return parse_filter(text)


def query_problems(op: Operation, pairs: Sequence[tuple[str, str]]) -> list[Problem]:
    out: list[Problem] = []
    counts = Counter(name for name, _ in pairs)
    for name, count in counts.items():
        if count > 1:
            out.append(Problem(f"duplicated query parameter '{name}'", parameter=name))
    values = dict(pairs)
    for name, value in values.items():
        param = op.query_params.get(name)
        if param is None:
            out.append(Problem(f"'{name}' is not a valid query parameter for this endpoint", parameter=name))
            continue
        out.extend(_param_problems(op, name, value))
    for name, param in op.query_params.items():
        if param.get("required") and name not in values:
            out.append(Problem(f"'{name}' is a required query parameter", parameter=name))
    if "filter" in values and op.template in REQUIRED_FILTER_FIELDS and not out:
        fields = {c.field for c in conditions(cached_filter(values["filter"]))}
        needed = REQUIRED_FILTER_FIELDS[op.template]
        if not fields & set(needed):
            out.append(Problem(f"A filter on {' or '.join(needed)} is required for this endpoint", parameter="filter"))
    return out


def _param_problems(op: Operation, name: str, value: str) -> list[Problem]:
    if name == "page[size]":
        assert op.page_size is not None
        _default, low, high = op.page_size
        if not _INT_RE.match(value.strip()):
            return [Problem(f"page[size] must be an integer, got '{value}'", parameter=name)]
        size = int(value)
        if size < low or size > high:
            return [Problem(f"page[size] must be between {low} and {high}, got {size}", parameter=name)]
        return []
    if name == "page[cursor]":
        if not value or decode_cursor(value) is None:
            return [Problem("Invalid page cursor", parameter=name)]
        return []
    if name == "sort":
        if op.sort_values is not None and value not in op.sort_values:
            return [
                Problem(
                    f"'{value}' is not a valid sort value; expected one of {', '.join(op.sort_values)}",
                    parameter=name,
                )
            ]
        return []
    if name == "filter":
        try:
            node = cached_filter(value)
        except FilterError as exc:
            return [Problem(str(exc), parameter=name)]
        errors = check_filter(node, op.filters or {})
        return [Problem(e, parameter=name) for e in errors]
    allowed = op.list_enums.get(name)
    if allowed is not None:
        items = value.split(",")
        bad = [item for item in items if item not in allowed]
        if bad:
            return [
                Problem(
                    f"'{bad[0]}' is not a valid value for {name}; expected one of {', '.join(sorted(allowed))}",
                    parameter=name,
                )
            ]
        return []
    schema = get_spec().resolve(op.query_params[name].get("schema", {}))
    if schema.get("type") == "integer" and not _INT_RE.match(value.strip()):
        return [Problem(f"{name} must be an integer", parameter=name)]
    if schema.get("type") == "boolean" and value not in ("true", "false"):
        return [Problem(f"{name} must be true or false", parameter=name)]
    if "enum" in schema and value not in schema["enum"]:
        return [Problem(f"'{value}' is not a valid value for {name}", parameter=name)]
    return []


# ---- bodies --------------------------------------------------------------------------------------
def body_problems(op: Operation, body: str | bytes | None) -> list[Problem]:
    """JSON:API request bodies (POST and PATCH), checked against the spec schema + rules."""
    request = op.raw.get("requestBody")
    if op.method not in ("POST", "PATCH") or not request:
        return []
    content = request.get("content", {})
    media = content.get("application/vnd.api+json") or next(iter(content.values()), None)
    if media is None:
        return []
    if body is None or (isinstance(body, (bytes, str)) and not body.strip()):
        return [Problem("A request body is required", pointer="/data")]
    try:
        doc = json.loads(body)
    except ValueError:
        return [Problem("The request body is not valid JSON", pointer="/")]
    out = [Problem(msg, pointer=ptr) for ptr, msg in schema_problems(media.get("schema", {}), doc, "")]
    if out:
        return out[:5]
    data = doc.get("data") if isinstance(doc, dict) else None
    attrs = data.get("attributes", {}) if isinstance(data, dict) else {}
    if op.template in REPORT_TEMPLATES:
        out.extend(_report_problems(op, attrs))
    elif op.template == "/api/metric-aggregates":
        out.extend(_aggregate_problems(attrs))
    return out


def schema_problems(schema: dict[str, Any], value: Any, pointer: str) -> list[tuple[str, str]]:
    """A small JSON-schema check (types, required, enums, oneOf-as-anyOf) used for request bodies."""
    spec = get_spec()
    schema = spec.flatten(schema)
    if value is None:
        return [] if schema.get("nullable") else [(pointer or "/", f"'{pointer or '/'}' may not be null")]
    options = schema.get("oneOf") or schema.get("anyOf")
    if options:
        results = [schema_problems(o, value, pointer) for o in options]
        if any(not r for r in results):
            return []
        return min(results, key=len)
    kind = schema.get("type") or ("object" if "properties" in schema else None)
    if "enum" in schema and value not in schema["enum"]:
        return [
            (
                pointer,
                f"'{value}' is not a valid value for '{pointer}'; expected one of "
                f"{', '.join(str(v) for v in schema['enum'] if v is not None)}",
            )
        ]
    if kind == "object":
        if not isinstance(value, dict):
            return [(pointer, f"'{pointer or '/'}' must be an object")]
        out = [
            (f"{pointer}/{name}", f"'{pointer}/{name}' is a required field")
            for name in schema.get("required", [])
            if name not in value
        ]
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                out.extend(schema_problems(sub, value[name], f"{pointer}/{name}"))
        return out
    if kind == "array":
        if not isinstance(value, list):
            return [(pointer, f"'{pointer}' must be an array")]
        out = []
        for i, item in enumerate(value):
            out.extend(schema_problems(schema.get("items", {}), item, f"{pointer}/{i}"))
        return out
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
    }
    check = checks.get(str(kind))
    if check is not None and not check(value):
        return [(pointer, f"'{pointer}' must be of type {kind}")]
    if kind == "string" and schema.get("format") == "date-time":
        try:
            parse_datetime(value)
        except FilterError:
            return [(pointer, f"'{pointer}' must be an ISO-8601 datetime")]
    return []


def timeframe_bounds(timeframe: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """Start and end of a custom timeframe (None for a ``key`` timeframe)."""
    if "start" not in timeframe:
        return None
    return parse_datetime(timeframe["start"]), parse_datetime(timeframe["end"])


def _report_problems(op: Operation, attrs: dict[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    bounds = timeframe_bounds(attrs.get("timeframe") or {})
    if bounds is not None:
        start, end = bounds
        if end <= start:
            out.append(Problem("timeframe end must be after start", pointer="/data/attributes/timeframe"))
        elif end - start > timedelta(days=366):
            out.append(Problem("timeframe may not be longer than one year", pointer="/data/attributes/timeframe"))
        interval = attrs.get("interval")
        limit = INTERVAL_MAX_DAYS.get(str(interval))
        if limit is not None and end - start > timedelta(days=limit):
            out.append(
                Problem(
                    f"timeframe may not be longer than {limit} days with interval '{interval}'",
                    pointer="/data/attributes/interval",
                )
            )
    attr_schemas = _request_attributes(op)
    group_by = attrs.get("group_by")
    if group_by:
        desc = str(attr_schemas.get("group_by", {}).get("description", ""))
        m = re.search(r"The following group by attributes are required: ([\w, ]+)", desc)
        needed = [g.strip() for g in m.group(1).split(",")] if m else []
        for prereq in re.finditer(r"The prerequisites for (\w+) is ([\w, ]+)", desc):
            if prereq.group(1) in group_by:
                needed += [g.strip() for g in prereq.group(2).split(",")]
        missing = [g for g in needed if g and g not in group_by]
        if missing:
            out.append(Problem(f"group_by must include {', '.join(missing)}", pointer="/data/attributes/group_by"))
    text = attrs.get("filter")
    if text:
        rules = report_filter_rules(op.template)
        try:
            node = cached_filter(text)
        except FilterError as exc:
            return [*out, Problem(str(exc), pointer="/data/attributes/filter")]
        for error in check_filter(node, rules):
            out.append(Problem(error, pointer="/data/attributes/filter"))
        seen = Counter(c.field for c in conditions(node))
        for field, count in seen.items():
            if count > 1:
                out.append(
                    Problem(
                        f"Only one filter can be used per attribute ('{field}')",
                        pointer="/data/attributes/filter",
                    )
                )
    return out


def _request_attributes(op: Operation) -> dict[str, dict[str, Any]]:
    spec = get_spec()
    schema = spec.flatten(op.raw["requestBody"]["content"]["application/vnd.api+json"]["schema"])
    data = spec.flatten(schema["properties"]["data"])
    attrs = spec.flatten(data["properties"]["attributes"])
    return {k: spec.flatten(v) for k, v in attrs.get("properties", {}).items()}


@functools.lru_cache(maxsize=16)
def report_filter_rules(template: str) -> dict[str, FilterRule]:
    """Allowed report filter fields/operators, parsed from the ``filter`` attribute's description."""
    desc = str(_request_attributes(get_spec().operation("POST", template)).get("filter", {}).get("description", ""))
    rules: dict[str, FilterRule] = {}
    for m in re.finditer(r"attributes \(([^)]*)\): Supported operators: ([\w\-, ]+)\.", desc):
        ops = frozenset(o.strip() for o in m.group(2).split(","))
        for field in m.group(1).split(","):
            rules[field.strip()] = FilterRule(field.strip(), ops, ops, frozenset(), "string")
    simple = re.search(r"Allowed filters are ([\w, ]+)\.\s*Allowed operators are ([\w\-, ]+)\.", desc)
    if simple:
        ops = frozenset(o.strip() for o in simple.group(2).split(","))
        for field in simple.group(1).split(","):
            rules[field.strip()] = FilterRule(field.strip(), ops, ops, frozenset(), "string")
    return rules


@functools.lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    try:
        return frozenset(zoneinfo.available_timezones())
    except Exception:  # pragma: no cover - no tz database: skip the check
        return frozenset()


def aggregate_conditions(filters: Sequence[str]) -> list[Condition]:
    out: list[Condition] = []
    for text in filters:
        out.extend(conditions(cached_filter(text)))
    return out


def _aggregate_problems(attrs: dict[str, Any]) -> list[Problem]:
    pointer = "/data/attributes/filter"
    filters = attrs.get("filter") or []
    try:
        conds = aggregate_conditions(filters)
    except FilterError as exc:
        return [Problem(str(exc), pointer=pointer)]
    ops = {c.op for c in conds if c.field == "datetime" and isinstance(c.value, datetime)}
    out: list[Problem] = []
    if "greater-or-equal" not in ops or "less-than" not in ops:
        out.append(
            Problem(
                "filter must include a time range: greater-or-equal(datetime,...) and less-than(datetime,...)",
                pointer=pointer,
            )
        )
    for cond in conds:
        if cond.field == "datetime" and cond.op not in COMPARISONS:
            out.append(Problem(f"operator '{cond.op}' is not supported on datetime", pointer=pointer))
    tz = attrs.get("timezone")
    zones = _timezones()
    if tz and zones and tz not in zones:
        out.append(Problem(f"Unknown timezone '{tz}'", pointer="/data/attributes/timezone"))
    if attrs.get("page_cursor") is not None and decode_cursor(str(attrs["page_cursor"])) is None:
        out.append(Problem("Invalid page_cursor", pointer="/data/attributes/page_cursor"))
    return out
