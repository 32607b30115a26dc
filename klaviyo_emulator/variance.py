"""Shape variance: serve what the spec allows and real Klaviyo sends, not only what the tap expects.

With `EmulatorConfig.shape_variance` (a rate, 0..1) every JSON:API answer of a GET is varied before it is sent,
deterministically by seed, resource type, id and attribute (the same resource looks the same on every page and
every run):

- attributes the spec does not mark required are omitted, nullable ones nulled (nested objects too);
- attributes the spec does not list are added (one or two names per resource type, on some resources);
- enum-typed attributes get values the spec does not list;
- to-one relationships are dropped, `data: null`, or a partial linkage (`{"type": ...}` without an id);
  to-many relationships the request did not ask to include are dropped;
- `attributes` is null or `{}` on some resources.

Kept as they are: `type` and `id` (a resource's identity), to-many linkages the request included (the
records they carry are identities of their own: attributions, flow actions, campaign messages), `links`, and
POST answers (reports and aggregates are not resources: their groupings are their rows' identity).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .spec import Operation, ResourceShape, Spec, get_spec

#: Attribute names Klaviyo sends beyond the spec, as a new field would appear.
EXTRA_NAMES = ("experimental_flag", "channel_metadata", "source_detail", "score_v2")


@dataclass(frozen=True)
class Variance:
    """One seeded variance: `rate` of the eligible places are varied."""

    rate: float
    seed: int

    def draw(self, *parts: Any) -> float:
        """A number in [0, 1), the same for the same parts and seed."""
        key = "\x1f".join(str(p) for p in (self.seed, *parts)).encode()
        return (zlib.crc32(key) & 0xFFFFFFFF) / 2**32

    def vary_document(self, doc: dict[str, Any], op: Operation) -> dict[str, Any]:
        spec = get_spec()
        data = doc.get("data")
        shapes = {} if op.data is None else {op.data.type: op.data}
        shapes.update(op.included)
        for resource in _resources(data):
            self._vary_resource(spec, resource, shapes.get(str(resource.get("type"))), primary=True)
        for resource in _resources(doc.get("included")):
            self._vary_resource(spec, resource, shapes.get(str(resource.get("type"))), primary=False)
        return doc

    def _vary_resource(self, spec: Spec, resource: dict[str, Any], shape: ResourceShape | None, primary: bool) -> None:
        if shape is None:
            return
        rtype, rid = shape.type, resource.get("id")
        attributes = resource.get("attributes")
        roll = self.draw(rtype, rid, "attributes")
        if isinstance(attributes, dict) and roll < self.rate / 10:
            resource["attributes"] = None if roll < self.rate / 20 else {}
        elif isinstance(attributes, dict):
            self._vary_object(spec, attributes, shape.attributes, set(shape.required_attributes), (rtype, rid), 0)
            for name in EXTRA_NAMES:
                if self.draw(rtype, "extra", name) < 0.5 and self.draw(rtype, rid, "extra", name) < self.rate:
                    attributes[name] = {"value": name, "n": 1} if name.endswith("metadata") else f"new-{name}"
        relationships = resource.get("relationships")
        if isinstance(relationships, dict):
            self._vary_relationships(relationships, shape, (rtype, rid))

    def _vary_object(
        self,
        spec: Spec,
        values: dict[str, Any],
        schemas: dict[str, Any],
        required: set[str],
        where: tuple[Any, ...],
        depth: int,
    ) -> None:
        for name in list(values):
            schema = spec.flatten(schemas.get(name) or {})
            roll = self.draw(*where, name)
            if name not in required and roll < self.rate / 3:
                del values[name]
                continue
            if schema.get("nullable") and roll < self.rate * 2 / 3:
                values[name] = None
                continue
            value = values[name]
            if schema.get("enum") and isinstance(value, str) and roll < self.rate:
                values[name] = f"{value}_newer_than_spec"
            elif isinstance(value, dict) and depth < 3 and schema.get("properties"):
                nested_required = set(schema.get("required") or ())
                self._vary_object(spec, value, schema["properties"], nested_required, (*where, name), depth + 1)

    def _vary_relationships(self, relationships: dict[str, Any], shape: ResourceShape, where: tuple[Any, ...]) -> None:
        for name in list(relationships):
            entry = relationships[name]
            declared = shape.relationships.get(name)
            roll = self.draw(*where, "rel", name)
            if roll >= self.rate or not isinstance(entry, dict):
                continue
            if declared is not None and declared.to_many:
                if "data" not in entry:
                    del relationships[name]
                continue
            if roll < self.rate / 3:
                del relationships[name]
            elif roll < self.rate * 2 / 3:
                entry["data"] = None
            elif isinstance(entry.get("data"), dict):
                entry["data"] = {"type": entry["data"].get("type")}


def _resources(data: Any) -> Iterable[dict[str, Any]]:
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return [item for item in data if isinstance(item, dict)]
    return []
