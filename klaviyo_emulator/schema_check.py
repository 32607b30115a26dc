"""Validate response bodies against the spec's response schemas (test helper; needs ``jsonschema``).

OpenAPI 3.0 ``nullable: true`` has no JSON Schema equivalent, so schemas are rewritten with
``anyOf: [schema, {"type": "null"}]`` before validation. Two deliberate relaxations, both where the spec
cannot be met by real responses: ``oneOf`` is read as ``anyOf`` (alternatives such as Email/SMS/Push send
options overlap, so a real object matches several), and ``links.next``/``links.prev`` may be null (the
API sends null on the last/first page). Kept out of the server: only tests import it.
"""

from __future__ import annotations

import functools
from typing import Any

from .spec import get_spec


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {
        ("anyOf" if k == "oneOf" else k): _convert(v)
        for k, v in node.items()
        if k not in ("nullable", "example", "discriminator")
    }
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@functools.lru_cache(maxsize=1)
def _components() -> dict[str, Any]:
    schemas = _convert(get_spec().schemas)
    # Klaviyo sends "next": null / "prev": null on the last/first page; the spec types them as plain strings.
    links = schemas.get("CollectionLinks", {}).get("properties", {})
    for name in ("next", "prev"):
        if name in links:
            links[name] = {"anyOf": [links[name], {"type": "null"}]}
    return {"schemas": schemas}


@functools.lru_cache(maxsize=512)
def _validator(method: str, template: str, status: str) -> Any:
    import jsonschema

    op = get_spec().operation(method, template)
    response = get_spec().resolve(op.raw["responses"][status])
    schema = response["content"]["application/vnd.api+json"]["schema"]
    doc = {"components": _components(), **_convert(schema)}
    cls = jsonschema.validators.validator_for({"$schema": "http://json-schema.org/draft-07/schema#"})
    return cls(doc)


def response_errors(method: str, template: str, body: Any, status: int = 200, limit: int = 5) -> list[str]:
    """Schema violations of a response body (empty list = valid)."""
    op = get_spec().operation(method, template)
    codes = [c for c in op.raw["responses"] if c.startswith("2")]
    code = str(status) if str(status) in codes else codes[0]
    validator = _validator(method, template, code)
    out: list[str] = []
    for err in validator.iter_errors(body):
        out.append(f"{'/'.join(str(p) for p in err.absolute_path)}: {err.message[:300]}")
        if len(out) >= limit:
            break
    return out
