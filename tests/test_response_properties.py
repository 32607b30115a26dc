"""Property-based: any response document the spec allows goes through a stream's own parse -> shape ->
post-process path without raising, and what comes out is valid against the stream's generated schema.

Documents are generated (hypothesis-jsonschema) from the spec's 200 response schema of every endpoint a
stream reads itself. Deterministic and database-free (CI cannot flake); a bounded number of examples per
stream by default, many more with ``HYPOTHESIS_PROFILE=deep``.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from functools import cache
from typing import Any

import jsonschema
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from singer_sdk.contrib.msgspec import encoder

from klaviyo_core.spec import load_spec
from tap_klaviyo.reading.query import spec_template
from tap_klaviyo.reading.stream import KlaviyoStream
from tap_klaviyo.streams.reports import ReportStream
from tap_klaviyo.tap import TapKlaviyo

settings.register_profile(
    "default",
    max_examples=10,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile("deep", parent=settings.get_profile("default"), max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

#: Hypothesis describes a failing strategy in full; the spec's strategies are large by nature.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

#: Refs expanded inside one another (a flow definition's actions nest deeper; below this, any value).
MAX_REFS = 8
#: Generated lists stay short: shapes matter here, not volume.
MAX_ITEMS = 2
#: Streams whose rows need a deep shape (a profile's subscriptions.email.marketing suppressions): every key
#: the spec lists is generated, none null (values still empty, odd or extra where the spec allows).
DEEP_SHAPES = frozenset({"global_exclusion", "list_exclusion"})
#: JSON Schema keywords kept as they are (`format` only where a record keeps it).
KEPT_KEYS = frozenset({"type", "enum", "required", "minimum", "maximum", "minItems", "minLength", "maxLength"})
CONFIG = {
    "api_key": "pk_property_test",
    "api_url": "http://127.0.0.1:9",
    "start_date": "2020-01-01T00:00:00Z",
    "metric_aggregate_queries": [
        {"name": "generated", "metric_id": "M1", "measurements": ["count"], "interval": "day", "by": ["$message"]}
    ],
}


@cache
def tap() -> TapKlaviyo:
    return TapKlaviyo(config=CONFIG, validate_config=False)


def stream_of(name: str) -> KlaviyoStream:
    stream = tap().streams[name]
    assert isinstance(stream, KlaviyoStream)
    return stream


def streams_reading_their_own_responses() -> list[str]:
    """Every stream that sends its own request, GET or a report's POST (sideloaded and derived rows come
    out of a parent's records)."""
    names = []
    for name in sorted(tap().streams):
        stream = stream_of(name)
        if not (stream.arrives_with_parent or stream.derived_from_parent):
            names.append(name)
    return names


def to_json_schema(node: Any, active: tuple[str, ...] = ()) -> Any:
    """OpenAPI 3.0 -> JSON Schema: refs inlined (a ref inside itself, or past MAX_REFS, becomes "anything"),
    `nullable` as a null type, descriptive keys dropped."""
    if not isinstance(node, Mapping):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        if ref in active or len(active) >= MAX_REFS:
            return {}
        target: Any = load_spec()
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        resolved = to_json_schema(target, (*active, ref))
        return {"anyOf": [resolved, {"type": "null"}]} if node.get("nullable") else resolved
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in {"properties"}:
            out[key] = {name: to_json_schema(sub, active) for name, sub in value.items()}
        elif key in {"items", "additionalProperties", "not"}:
            out[key] = to_json_schema(value, active)
        elif key in {"allOf", "anyOf", "oneOf"}:
            out[key] = [to_json_schema(sub, active) for sub in value]
        elif key in KEPT_KEYS or (key == "format" and value in {"date-time", "date"}):
            out[key] = value
    if out.get("type") == "array":
        out["maxItems"] = MAX_ITEMS
    if node.get("nullable"):
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        elif kind is None:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


#: Keys Klaviyo may send beyond the spec (the drift warning names them; the record keeps them).
EXTRA_KEYS = ("added_by_klaviyo", "x_new_field")


def documents(schema: Any, complete: bool = False) -> st.SearchStrategy[Any]:
    """Values valid against `schema` (the JSON Schema `to_json_schema` makes). Objects, arrays and unions are
    composed here, each property on its own, so a 3 MB spec stays fast; leaves (strings with formats, enums,
    numbers) come from hypothesis-jsonschema. Objects may carry a key the spec does not list; `complete`:
    every key the spec lists is present and not null, for rows that need a deep shape."""
    if not isinstance(schema, Mapping) or not schema:
        return st.none() | st.booleans() | st.integers() | st.text(max_size=8)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branches = [o for o in schema[key] if not (complete and o == {"type": "null"})] or schema[key]
            return st.one_of([documents(option, complete) for option in branches])
    if "allOf" in schema:
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in schema["allOf"]:
            for key, sub in (part.get("properties") or {}).items():
                known = merged["properties"].get(key)
                both = known is not None and "properties" in known and "properties" in sub
                merged["properties"][key] = {"allOf": [known, sub]} if both else sub  # parts extend a resource
            merged["required"] += part.get("required") or []
        return documents(merged, complete)
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    options: list[st.SearchStrategy[Any]] = []
    if "null" in kinds and not (complete and len(kinds) > 1):
        options.append(st.none())
    if "object" in kinds or "properties" in schema:
        options.append(objects(schema, complete))
    if "array" in kinds:
        items = documents(schema.get("items") or {}, complete)
        options.append(st.lists(items, min_size=int(complete), max_size=MAX_ITEMS))
    scalars = [k for k in kinds if k in {"string", "integer", "number", "boolean"}]
    if scalars:
        leaf = {k: v for k, v in schema.items() if k not in {"properties", "items", "required"}}
        leaf["type"] = scalars
        if "enum" in leaf:
            leaf["enum"] = [v for v in leaf["enum"] if v is not None]
        options.append(from_schema(dict(leaf)))
    if not options:  # `enum` alone, or `type` left out
        return from_schema(dict(schema)) if "enum" in schema else documents({})
    return st.one_of(options)


def objects(schema: Mapping[str, Any], complete: bool) -> st.SearchStrategy[dict[str, Any]]:
    props = schema.get("properties") or {}
    if not props:
        return st.dictionaries(st.text(min_size=1, max_size=6), documents({}), max_size=MAX_ITEMS)
    required = set(props) if complete else set(schema.get("required") or ())
    if {"type", "id", "attributes"} <= props.keys():
        required.add("id")  # a resource without an id is skipped (tests/test_recorded_replay.py shows it): rare here
    fixed = {k: documents(v, complete) for k, v in props.items() if k in required}
    optional = {k: documents(v, complete) for k, v in props.items() if k not in required}
    optional.update({k: documents({}) for k in EXTRA_KEYS if k not in props})
    return st.fixed_dictionaries(fixed, optional=optional)


@cache
def response_schema(template: str, method: str) -> dict[str, Any]:
    content = load_spec()["paths"][template][method]["responses"]["200"]["content"]
    schema: dict[str, Any] = to_json_schema(next(iter(content.values()))["schema"])
    return schema


def fake_response(document: Any) -> requests.Response:
    """A 200 answer carrying `document`, as the stream would receive it."""
    response = requests.Response()
    response.status_code = 200
    response.headers["Content-Type"] = "application/vnd.api+json"
    response.raw = io.BytesIO(json.dumps(document).encode())
    return response


def context_for(stream: KlaviyoStream) -> dict[str, Any] | None:
    if isinstance(stream, ReportStream) and stream.partitions:
        return dict(stream.partitions[0])
    columns = stream.context_columns
    return {column: f"parent-{column}" for column in columns} or None


@pytest.mark.parametrize("name", streams_reading_their_own_responses())
def test_any_document_the_spec_allows_becomes_valid_records(name: str) -> None:
    stream = stream_of(name)
    template = spec_template(stream.path)
    validator = jsonschema.Draft7Validator(stream.schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    context = context_for(stream)
    if isinstance(stream, ReportStream):  # a report parses its rows for the slice it asked for
        stream.current_slice = stream.slices(context)[0]

    emitted: list[str] = []

    @given(document=documents(response_schema(template, stream.method), complete=name in DEEP_SHAPES))
    def check(document: Any) -> None:
        rows = [row for page in stream.parse_response(fake_response(document)) for row in page.records]
        for row in rows:
            record = stream.post_process(row, context)
            if record is None:
                continue
            emitted.append(name)
            written = json.loads(encoder.encode(record))  # as a target reads it (nested objects may be packed)
            errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(written)]
            assert not errors, (name, errors, record)

    check()
    assert emitted, f"{name}: no generated document gave a record: the property was never checked"


def test_the_property_tests_cover_every_endpoint_a_stream_reads() -> None:
    covered = {spec_template(stream_of(name).path) for name in streams_reading_their_own_responses()}
    assert {"/api/events", "/api/profiles", "/api/campaigns", "/api/templates"} <= covered
    assert len(covered) >= 20
