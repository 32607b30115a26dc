"""Turn stored records into JSON:API resource objects shaped by the operation's response schema.

The operation's :class:`~klaviyo_emulator.spec.ResourceShape` decides which attributes and relationships
appear, so a list member gets ``joined_group_at`` and an included profile does not get
``subscriptions``: the same record renders differently per endpoint, as it does on the real API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .records import Rec
from .spec import ResourceShape, get_spec
from .undocumented import legacy_attribute_names

RelatedFn = Callable[[Rec, str], "list[str] | str | None"]


@dataclass
class RenderOptions:
    """Per-request rendering choices."""

    base: str
    fields: dict[str, set[str]] = field(default_factory=dict)
    additional: dict[str, set[str]] = field(default_factory=dict)
    omitted: dict[str, frozenset[str]] = field(default_factory=dict)
    include: frozenset[str] = frozenset()
    dynamic: Mapping[str, Callable[[Rec], Any]] = field(default_factory=dict)
    #: The request's ``revision`` header (older revisions get older shapes).
    revision: str = ""
    #: Resource type -> attributes served on every resource of that type beyond the spec (drift tests).
    extra: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Resource type -> (the shape, its attribute steps): what the choices above make of a shape, worked out
    #: once per request instead of once per resource.
    plans: dict[str, tuple[ResourceShape, list[Step]]] = field(default_factory=dict)


#: One attribute of a rendered resource: (name, its dynamic getter, the nested keys a sparse field keeps).
Step = tuple[str, "Callable[[Rec], Any] | None", "list[str] | None"]


def steps(rtype: str, names: Iterable[str], opts: RenderOptions) -> list[Step]:
    """Which of `names` a resource of `rtype` gets under `opts` (sparse and additional fields), in order."""
    wanted = opts.fields.get(rtype)
    omitted = opts.omitted.get(rtype, frozenset()) - opts.additional.get(rtype, set())
    out: list[Step] = []
    for name in names:
        if name in omitted:
            continue
        if wanted is not None and name not in wanted:
            nested = [w.split(".", 1)[1] for w in wanted if w.startswith(name + ".")]
            if nested:
                out.append((name, None, nested))
            continue
        out.append((name, opts.dynamic.get(name), None))
    return out


def type_path(rtype: str) -> str:
    """Collection path of a resource type (``flow-action`` -> ``/api/flow-actions``)."""
    path = get_spec().type_paths.get(rtype)
    if path:
        return path
    if rtype.endswith("y"):
        return f"/api/{rtype[:-1]}ies"
    return f"/api/{rtype}s"


def render(
    rec: Rec,
    shape: ResourceShape,
    opts: RenderOptions,
    related: RelatedFn | None = None,
    include_data: Iterable[str] = (),
) -> dict[str, Any]:
    """One resource object. ``include_data`` names to-many relationships that get a ``data`` list."""
    rtype = shape.type
    wanted = opts.fields.get(rtype)
    attrs: dict[str, Any] = {}
    legacy = legacy_attribute_names(opts.revision) if rtype == "flow-action" and opts.revision else None
    if legacy is not None:
        source, attribute_steps = rec.extra.get("legacy") or {}, steps(rtype, legacy, opts)
    else:
        plan = opts.plans.get(rtype)
        if plan is None or plan[0] is not shape:
            plan = opts.plans[rtype] = (shape, steps(rtype, shape.attributes, opts))
        source, attribute_steps = rec.attrs, plan[1]
    for name, getter, nested in attribute_steps:
        if nested is not None:
            value = source.get(name)
            attrs[name] = {k: value.get(k) for k in nested} if isinstance(value, dict) else value
        else:
            attrs[name] = getter(rec) if getter is not None else source.get(name)
    for name, value in opts.extra.get(rtype, {}).items():
        if wanted is None or name in wanted:
            attrs[name] = value
    base_path = f"{opts.base}{type_path(rec.type)}/{rec.id}"
    out: dict[str, Any] = {"type": rtype, "id": rec.id, "attributes": attrs}
    if shape.relationships:
        rels: dict[str, Any] = {}
        include = set(include_data)
        for name, rel in shape.relationships.items():
            entry: dict[str, Any] = {}
            if rel.to_many:
                if name in include and related is not None:
                    ids = related(rec, name) or []
                    entry["data"] = [{"type": rel.target, "id": i} for i in (ids if isinstance(ids, list) else [ids])]
            else:
                target = rec.rels.get(name)
                if target is None and related is not None:
                    value = related(rec, name)
                    target = value if isinstance(value, str) else None
                if target is not None:
                    entry["data"] = {"type": rel.target, "id": target}
            entry["links"] = {"self": f"{base_path}/relationships/{name}/", "related": f"{base_path}/{name}/"}
            rels[name] = entry
        out["relationships"] = rels
    if shape.has_links:
        out["links"] = {"self": f"{base_path}/"}
    return out


def identifier(rtype: str, rid: str) -> dict[str, str]:
    return {"type": rtype, "id": rid}
