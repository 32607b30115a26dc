"""A read's JSON:API document: its resources rendered with the request's sparse fieldsets, and the included
resources they name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .api_base import RequestContext, additional_only
from .data import MEMBERSHIP_TYPES, AccountData
from .records import Rec
from .render import RenderOptions, render
from .spec import Operation


class Documents:
    """Renders records of the account as the read side's documents."""

    def __init__(self, data: AccountData, extra_attributes: Mapping[str, Mapping[str, Any]]) -> None:
        self.data = data
        #: Attributes served beyond the spec, by resource type (the Api's mapping: tests change it in place).
        self.extra_attributes = extra_attributes

    def options(self, ctx: RequestContext, dynamic: Mapping[str, Callable[[Rec], Any]] | None = None) -> RenderOptions:
        """The request's sparse fieldsets and additional fields, and the values computed per record."""
        fields: dict[str, set[str]] = {}
        additional: dict[str, set[str]] = {}
        for name, value in ctx.params.items():
            if name.startswith("fields["):
                fields[name[7:-1]] = set(value.split(","))
            elif name.startswith("additional-fields["):
                additional[name[18:-1]] = set(value.split(","))
        dyn: dict[str, Callable[[Rec], Any]] = {"profile_count": self.profile_count}
        dyn.update(dynamic or {})
        return RenderOptions(
            ctx.base, fields, additional, additional_only(), frozenset(), dyn, ctx.revision, self.extra_attributes
        )

    def profile_count(self, rec: Rec) -> Any:
        if rec.type in MEMBERSHIP_TYPES:
            return len(self.data.members[rec.type].get(rec.id, {}))
        return rec.attrs.get("profile_count")

    def document(
        self,
        op: Operation,
        ctx: RequestContext,
        recs: list[Rec],
        single: bool,
        dynamic: Mapping[str, Callable[[Rec], Any]] | None = None,
    ) -> dict[str, Any]:
        assert op.data is not None
        opts = self.options(ctx, dynamic)
        include = [i for i in ctx.params.get("include", "").split(",") if i]
        related = self.data.related_ids
        data = [render(r, op.data, opts, related, include) for r in recs]
        doc: dict[str, Any] = {"data": data[0] if single else data}
        if include:
            doc["included"] = self.included(op, recs, include, opts)
        if single:
            doc["links"] = {"self": ctx.url()}
        return doc

    def included(self, op: Operation, recs: list[Rec], include: list[str], opts: RenderOptions) -> list[dict[str, Any]]:
        assert op.data is not None
        seen: set[tuple[str, str]] = set()
        out: list[dict[str, Any]] = []
        inc_opts = RenderOptions(
            opts.base,
            opts.fields,
            opts.additional,
            opts.omitted,
            frozenset(),
            {"profile_count": self.profile_count},
            opts.revision,
            opts.extra,
        )
        for rec in recs:
            for name in include:
                rel = op.data.relationships.get(name)
                if rel is None or rel.target is None:
                    continue
                ids = self.data.related_ids(rec, name)
                for rid in ids if isinstance(ids, list) else ([ids] if ids else []):
                    if (rel.target, rid) in seen:
                        continue
                    seen.add((rel.target, rid))
                    target = self.data.get(rel.target, rid)
                    shape = op.included.get(rel.target)
                    if target is not None and shape is not None:
                        out.append(render(target, shape, inc_opts, self.data.related_ids))
        return out
