"""Answer validated GET requests from the account data: filter, sort, paginate, include, render.

Most endpoints are served generically from the path template: ``/api/x`` lists a type,
``/api/x/{id}`` fetches one, ``/api/x/{id}/rel`` follows a relationship and
``/api/x/{id}/relationships/rel`` returns identifiers. Events and memberships get special handling
(lazy events; ``joined_group_at``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from .api_base import (
    ApiError,
    ReadModes,
    RequestContext,
    additional_only,
    field_values,
    fixed_page_size,
    invalid,
    not_found,
)
from .contract import REPORT_TEMPLATES
from .data import MEMBERSHIP_TYPES, AccountData
from .documents import Documents
from .event_reads import EventReads
from .lazy import LazyMembers, LazyProfiles
from .listing import Listing
from .records import Rec, fmt
from .render import identifier
from .spec import Operation, ResourceShape, get_spec

#: A lazy account's pages, encoded in C: the same bytes as `_dumps` for what the generator makes (compact, UTF-8,
#: floats between 1e-4 and 1e16, where both write the same digits); tests/test_emulator_lazy.py compares them.
_encode_lazy = msgspec.json.Encoder().encode


class Api:
    """The read side of the emulated API: dispatches to its parts (documents, collections, events pages)."""

    def __init__(self, data: AccountData, extra_attributes: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.data = data
        #: Attributes served beyond the spec, by resource type (shared with EmulatorConfig: tests flip it).
        self.extra_attributes: Mapping[str, Mapping[str, Any]] = (
            extra_attributes if extra_attributes is not None else {}
        )
        self.modes = ReadModes()
        self.documents = Documents(data, self.extra_attributes)
        self.listing = Listing(self.documents, self.modes)
        self.event_reads = EventReads(data, self.documents, self.modes)

    @property
    def frozen(self) -> bool:
        """Collections filtered and sorted once (see :class:`ReadModes`)."""
        return self.modes.frozen

    @frozen.setter
    def frozen(self, value: bool) -> None:
        self.modes.frozen = value

    @property
    def lazy(self) -> bool:
        """A lazy account served by position (see :class:`ReadModes`)."""
        return self.modes.lazy

    @lazy.setter
    def lazy(self, value: bool) -> None:
        self.modes.lazy = value

    # ---- dispatch --------------------------------------------------------------------------------
    def handle(self, op: Operation, ctx: RequestContext) -> tuple[int, dict[str, Any] | bytes]:
        """Status and document (a dict, or bytes already encoded by a fast path)."""
        if op.method == "POST" and (op.template in REPORT_TEMPLATES or op.template == "/api/metric-aggregates"):
            from .reports import run_report

            return 200, run_report(self.data, op, ctx)
        if op.method != "GET":
            raise ApiError(
                405,
                "method_not_allowed",
                "Method not allowed.",
                f"The emulated account is read-only: {op.method} {op.template} is not served.",
            )
        with self.data.lock:
            if op.template == "/api/events":
                return 200, self.event_reads.page(op, ctx)
            parts = op.template.split("/")
            if "relationships" in parts:
                return 200, self.relationship_ids(op, ctx, parts)
            if len(parts) == 3:
                if op.data is None:
                    return 200, {"data": [], "links": {"self": ctx.url(), "next": None, "prev": None}}
                source = self.data.store.get(op.data.type)
                if self.lazy and isinstance(source, LazyProfiles):
                    return 200, self.lazy_page(self.listing.collection(op, ctx, [], lazy=source))
                # A message's own copy of a template is not in the library (campaign-message-assign-template).
                recs = [r for r in self.data.records(op.data.type) if r.extra.get("listed", True)]
                return 200, self.listing.collection(op, ctx, recs)
            if len(parts) == 4:
                return 200, self.single(op, ctx)
            return 200, self.related(op, ctx, parts)

    def _parent(self, parts: list[str], ctx: RequestContext) -> Rec:
        parent_path = "/".join(parts[:3])
        rtype = next((t for t, p in get_spec().type_paths.items() if p == parent_path), None)
        rid = ctx.path_params.get("id") or ctx.path_params.get("job_id") or ""
        rec = self.data.get(rtype, rid) if rtype else None
        if rec is None:
            raise not_found(f"A resource with id {rid} was not found.")
        return rec

    def single(self, op: Operation, ctx: RequestContext) -> dict[str, Any]:
        assert op.data is not None
        rid = ctx.path_params.get("id") or ctx.path_params.get("job_id") or ""
        rec = self.data.get(op.data.type, rid)
        if rec is None:
            raise not_found(f"A {op.data.type} with id {rid} was not found.")
        return self.documents.document(op, ctx, [rec], single=True)

    def related(self, op: Operation, ctx: RequestContext, parts: list[str]) -> dict[str, Any] | bytes:
        parent = self._parent(parts, ctx)
        rel = parts[4]
        members = self.data.members.get(parent.type, {}).get(parent.id) if rel == "profiles" else None
        if self.lazy and op.collection and isinstance(members, LazyMembers):
            dynamic = self._membership_dynamic(parent, rel)
            return self.lazy_page(self.listing.collection(op, ctx, [], dynamic, lazy=members))
        ids = self.data.related_ids(parent, rel)
        assert op.data is not None
        target = op.data.type
        id_list = ids if isinstance(ids, list) else ([ids] if ids else [])
        recs = [r for r in (self.data.get(target, i) for i in id_list) if r is not None]
        dynamic = self._membership_dynamic(parent, rel)
        if not op.collection:
            if not recs:
                raise not_found(f"No {target} is related to {parent.type} {parent.id}.")
            return self.documents.document(op, ctx, recs[:1], single=True)
        return self.listing.collection(op, ctx, recs, dynamic)

    def lazy_page(self, doc: dict[str, Any]) -> dict[str, Any] | bytes:
        """A lazy account's page as bytes encoded in C (attributes served beyond the spec: as a document)."""
        return doc if self.extra_attributes else _encode_lazy(doc)

    def _membership_dynamic(self, parent: Rec, rel: str) -> dict[str, Callable[[Rec], Any]]:
        if parent.type in MEMBERSHIP_TYPES and rel == "profiles":
            joined = self.data.members[parent.type].get(parent.id, {})
            return {"joined_group_at": lambda rec: fmt(joined[rec.id]) if rec.id in joined else None}
        return {}

    def relationship_ids(self, op: Operation, ctx: RequestContext, parts: list[str]) -> dict[str, Any]:
        parent = self._parent(parts, ctx)
        rel = parts[-1]
        ids = self.data.related_ids(parent, rel)
        target = op.data.type if op.data is not None else rel.rstrip("s")
        if not op.collection:
            if not ids or isinstance(ids, list):
                return {"data": None, "links": {"self": ctx.url()}}
            return {"data": identifier(target, ids), "links": {"self": ctx.url()}}
        id_list = ids if isinstance(ids, list) else ([ids] if ids else [])
        recs = [r for r in (self.data.get(target, i) for i in id_list) if r is not None]
        doc = self.listing.collection(op, ctx, recs, self._membership_dynamic(parent, rel), ids_only=True)
        return doc


def shape_for(op: Operation) -> ResourceShape | None:
    return op.data


__all__ = [
    "Api",
    "ApiError",
    "RequestContext",
    "additional_only",
    "field_values",
    "fixed_page_size",
    "invalid",
    "not_found",
    "shape_for",
]
