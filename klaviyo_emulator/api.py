"""Answer validated GET requests from the account data: filter, sort, paginate, include, render.

Most endpoints are served generically from the path template: ``/api/x`` lists a type,
``/api/x/{id}`` fetches one, ``/api/x/{id}/rel`` follows a relationship and
``/api/x/{id}/relationships/rel`` returns identifiers. Events and memberships get special handling
(lazy events; ``joined_group_at``).
"""

from __future__ import annotations

import bisect
import functools
import json
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from .contract import REPORT_TEMPLATES, cached_filter
from .cursor import decode_cursor, encode_cursor
from .data import MEMBERSHIP_TYPES, AccountData
from .event_pages import EventPages
from .events import PATTERN_LEN, EventQuery
from .filters import BoolOp, Condition, Node, conditions, dt_micros, evaluate, path_values, to_micros
from .lazy import LazyMembers, LazyProfiles, Sorted
from .records import SECOND, Rec, fmt
from .render import RenderOptions, identifier, render
from .spec import Operation, ResourceShape, get_spec

_DATETIME_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}T")
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
#: A lazy account's pages, encoded in C: the same bytes as `_dumps` for what the generator makes (compact, UTF-8,
#: floats between 1e-4 and 1e16, where both write the same digits); tests/test_emulator_lazy.py compares them.
_encode_lazy = msgspec.json.Encoder().encode


@functools.lru_cache(maxsize=1)
def _fast_events_shape() -> tuple[tuple[str, ...], tuple[str, ...]]:
    op = get_spec().operation("GET", "/api/events")
    assert op.data is not None
    return tuple(op.data.attributes), tuple(op.data.relationships)


def _fast_events(op: Operation) -> bool:
    """The hand-built event JSON matches the spec's event shape (else use the generic renderer)."""
    attrs, rels = _fast_events_shape()
    return attrs == ("timestamp", "event_properties", "datetime", "uuid") and rels == (
        "profile",
        "metric",
        "attributions",
    )


_MAX_RE = re.compile(r"maximum of (\d+)")


class ApiError(Exception):
    """An error answer (JSON:API error object fields)."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        parameter: str | None = None,
        pointer: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.parameter = parameter
        self.pointer = pointer


def not_found(detail: str = "Not found.") -> ApiError:
    return ApiError(404, "not_found", "Not found.", detail)


def invalid(detail: str, parameter: str | None = None, pointer: str | None = None) -> ApiError:
    return ApiError(400, "invalid", "Invalid input.", detail, parameter, pointer)


@dataclass
class RequestContext:
    """What a handler needs to know about the request beyond the operation."""

    base: str
    path: str
    raw_query: str
    pairs: list[tuple[str, str]]
    params: dict[str, str]
    body: Any = None
    path_params: dict[str, str] = field(default_factory=dict)
    revision: str = ""

    def url(self, pairs: Iterable[tuple[str, str]] | None = None) -> str:
        """Absolute URL on the emulator: the request path (with Klaviyo's trailing slash) + query."""
        path = self.path if self.path.endswith("/") else self.path + "/"
        if pairs is None:
            query = self.raw_query
        else:
            query = "&".join(f"{urllib.parse.quote(k, safe='')}={urllib.parse.quote(v, safe='')}" for k, v in pairs)
        return f"{self.base}{path}" + (f"?{query}" if query else "")

    def page_url(self, cursor: str) -> str:
        """``links.next``/``prev``: every original parameter plus ``page[cursor]``, percent-encoded."""
        pairs = [(k, v) for k, v in self.pairs if k != "page[cursor]"]
        return self.url([*pairs, ("page[cursor]", cursor)])


@functools.lru_cache(maxsize=1)
def additional_only() -> dict[str, frozenset[str]]:
    """Attributes returned only when asked via ``additional-fields[type]`` (e.g. profile subscriptions)."""
    out: dict[str, set[str]] = {}
    for op in get_spec().operations:
        for name, values in op.list_enums.items():
            if name.startswith("additional-fields["):
                out.setdefault(name[len("additional-fields[") : -1], set()).update(values)
    return {k: frozenset(v) for k, v in out.items()}


def fixed_page_size(op: Operation) -> int:
    """Page size of endpoints with a cursor but no ``page[size]`` (metrics: 200, from the description)."""
    if op.page_size is not None:
        return op.page_size[0]
    m = _MAX_RE.search(op.raw.get("description", ""))
    return int(m.group(1)) if m else 100


def field_values(rec: Rec, name: str, dynamic: Mapping[str, Callable[[Rec], Any]]) -> list[Any]:
    """Values a filter/sort field has on a record: attributes, dotted paths, relationship ids, extras."""
    getter = dynamic.get(name)
    if getter is not None:
        return [getter(rec)]
    if name in ("id", "ids") or (name == "profile_id" and rec.type == "profile"):
        return [rec.id]
    if name == "messages.channel":
        return [rec.extra.get("channel")]
    if name in rec.extra:
        return [rec.extra[name]]
    if name in rec.attrs:
        return [rec.attrs[name]]
    if "." in name:
        head, tail = name.split(".", 1)
        if tail == "id":
            for rel in (head, head + "s", head[:-1] + "ies"):
                if rel in rec.rels:
                    value = rec.rels[rel]
                    return list(value) if isinstance(value, list) else [value]
        return path_values(rec.attrs, name)
    if name.endswith("_id") and name[:-3] in rec.rels:
        return [rec.rels[name[:-3]]]
    return []


def _sortable(value: Any) -> Any:
    if isinstance(value, str) and _DATETIME_PREFIX.match(value):
        micros = to_micros(value)
        if micros is not None:
            return micros
    if isinstance(value, (dict, list)):
        return str(value)
    return value


class Api:
    """The read side of the emulated API."""

    def __init__(self, data: AccountData, extra_attributes: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.data = data
        #: Attributes served beyond the spec, by resource type (shared with EmulatorConfig: tests flip it).
        self.extra_attributes: Mapping[str, Mapping[str, Any]] = (
            extra_attributes if extra_attributes is not None else {}
        )
        self._cache: dict[tuple[Any, ...], str] = {}
        #: Filtered, sorted collections by (path, filter, sort): for an account nothing changes (benchmarks),
        #: so a 100,000-profile collection is filtered and sorted once, not once per page.
        self.frozen = False
        self._ordered: dict[tuple[str, str, str, bool], tuple[Sequence[tuple[Any, ...]], Sequence[Rec]]] = {}
        #: Serve a lazy account's profiles and memberships by position, and events from their computed pieces
        #: (off: from materialised records and the generic renderer, as the tests that prove both give the same
        #: pages do).
        self.lazy = True

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
                return 200, self.events(op, ctx)
            parts = op.template.split("/")
            if "relationships" in parts:
                return 200, self.relationship_ids(op, ctx, parts)
            if len(parts) == 3:
                if op.data is None:
                    return 200, {"data": [], "links": {"self": ctx.url(), "next": None, "prev": None}}
                source = self.data.store.get(op.data.type)
                if self.lazy and isinstance(source, LazyProfiles):
                    return 200, self.lazy_page(self.collection(op, ctx, [], lazy=source))
                # A message's own copy of a template is not in the library (campaign-message-assign-template).
                recs = [r for r in self.data.records(op.data.type) if r.extra.get("listed", True)]
                return 200, self.collection(op, ctx, recs)
            if len(parts) == 4:
                return 200, self.single(op, ctx)
            return 200, self.related(op, ctx, parts)

    # ---- shapes of answers -----------------------------------------------------------------------
    def _options(self, ctx: RequestContext, dynamic: Mapping[str, Callable[[Rec], Any]] | None = None) -> RenderOptions:
        fields: dict[str, set[str]] = {}
        additional: dict[str, set[str]] = {}
        for name, value in ctx.params.items():
            if name.startswith("fields["):
                fields[name[7:-1]] = set(value.split(","))
            elif name.startswith("additional-fields["):
                additional[name[18:-1]] = set(value.split(","))
        dyn: dict[str, Callable[[Rec], Any]] = {"profile_count": self._profile_count}
        dyn.update(dynamic or {})
        return RenderOptions(
            ctx.base, fields, additional, additional_only(), frozenset(), dyn, ctx.revision, self.extra_attributes
        )

    def _profile_count(self, rec: Rec) -> Any:
        if rec.type in MEMBERSHIP_TYPES:
            return len(self.data.members[rec.type].get(rec.id, {}))
        return rec.attrs.get("profile_count")

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
        return self._document(op, ctx, [rec], single=True)

    def related(self, op: Operation, ctx: RequestContext, parts: list[str]) -> dict[str, Any] | bytes:
        parent = self._parent(parts, ctx)
        rel = parts[4]
        members = self.data.members.get(parent.type, {}).get(parent.id) if rel == "profiles" else None
        if self.lazy and op.collection and isinstance(members, LazyMembers):
            return self.lazy_page(self.collection(op, ctx, [], self._membership_dynamic(parent, rel), lazy=members))
        ids = self.data.related_ids(parent, rel)
        assert op.data is not None
        target = op.data.type
        id_list = ids if isinstance(ids, list) else ([ids] if ids else [])
        recs = [r for r in (self.data.get(target, i) for i in id_list) if r is not None]
        dynamic = self._membership_dynamic(parent, rel)
        if not op.collection:
            if not recs:
                raise not_found(f"No {target} is related to {parent.type} {parent.id}.")
            return self._document(op, ctx, recs[:1], single=True)
        return self.collection(op, ctx, recs, dynamic)

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
        doc = self.collection(op, ctx, recs, self._membership_dynamic(parent, rel), ids_only=True)
        return doc

    # ---- collections -----------------------------------------------------------------------------
    def collection(
        self,
        op: Operation,
        ctx: RequestContext,
        recs: list[Rec],
        dynamic: Mapping[str, Callable[[Rec], Any]] | None = None,
        ids_only: bool = False,
        lazy: LazyProfiles | LazyMembers | None = None,
    ) -> dict[str, Any]:
        sort = ctx.params.get("sort", "")
        desc = sort.startswith("-")
        cache_key = (ctx.path, ctx.params.get("filter", ""), sort, ids_only)
        cached = self._ordered.get(cache_key) if self.frozen else None
        if cached is None and lazy is not None:
            cached = self._lazy_order(op, ctx, lazy, dynamic or {}, sort.lstrip("-"))
        if cached is None:
            cached = self._order(op, ctx, recs, dynamic or {}, sort.lstrip("-"))
            if self.frozen:
                self._ordered[cache_key] = cached
        keys, ordered = cached
        paginated = "page[cursor]" in op.query_params
        links: dict[str, Any] = {"self": ctx.url()}
        if paginated:
            size = int(ctx.params.get("page[size]") or fixed_page_size(op))
            start, end = self._window(keys, size, desc, ctx.params.get("page[cursor]"), sort)
            last = len(keys) - 1
            page_idx = list(range(last - start, last - end, -1)) if desc else list(range(start, end))
            page = [ordered[i] for i in page_idx]
            links["next"] = (
                ctx.page_url(encode_cursor({"a": list(keys[page_idx[-1]]), "s": sort}))
                if end < len(keys) and page_idx
                else None
            )
            links["prev"] = (
                ctx.page_url(encode_cursor({"b": list(keys[page_idx[0]]), "s": sort}))
                if start > 0 and page_idx
                else None
            )
        else:
            page = list(reversed(ordered)) if desc else list(ordered)
        if ids_only:
            target = op.data.type if op.data is not None else ""
            return {"data": [identifier(target, r.id) for r in page], "links": links}
        doc = self._document(op, ctx, page, single=False, dynamic=dynamic)
        doc["links"] = links
        return doc

    def _order(
        self,
        op: Operation,
        ctx: RequestContext,
        recs: list[Rec],
        dynamic: Mapping[str, Callable[[Rec], Any]],
        field: str,
    ) -> tuple[list[tuple[Any, ...]], list[Rec]]:
        """The records the request's filter keeps, with their sort keys, in ascending order."""
        node = self._effective_filter(op, ctx)
        if self.frozen and field:
            return self._slice(op, ctx, recs, dynamic, field, node)
        if node is not None:
            recs = [r for r in recs if evaluate(node, lambda name, r=r: field_values(r, name, dynamic))]  # type: ignore[misc]
        if not field:
            keyed = sorted(((rec.id,), rec) for rec in recs)
            return [k for k, _ in keyed], [r for _, r in keyed]
        return self._sorted(recs, dynamic, field)

    def _lazy_order(
        self,
        op: Operation,
        ctx: RequestContext,
        lazy: LazyProfiles | LazyMembers,
        dynamic: Mapping[str, Callable[[Rec], Any]],
        field: str,
    ) -> tuple[Sequence[tuple[Any, ...]], Sequence[Rec]]:
        """A lazy collection in its own order: range conditions on that field by bisection over positions, the
        rest of the filter (if any) tested on that window; in any other order, from materialised records."""
        keys, ordered = Sorted(lazy.key, 0, lazy.count), Sorted(lazy.record, 0, lazy.count)
        if field != lazy.sort_field:
            return self._order(op, ctx, list(ordered), dynamic, field)
        node = self._effective_filter(op, ctx)
        lo, hi, rest = _bounds(keys, node, field)
        if rest is None:
            return keys.window(lo, hi), ordered.window(lo, hi)
        picked = [i for i in range(lo, hi) if evaluate(rest, lambda name, r=ordered[i]: field_values(r, name, dynamic))]  # type: ignore[misc]
        return [keys[i] for i in picked], [ordered[i] for i in picked]

    def _slice(
        self,
        op: Operation,
        ctx: RequestContext,
        recs: list[Rec],
        dynamic: Mapping[str, Callable[[Rec], Any]],
        field: str,
        node: Node | None,
    ) -> tuple[list[tuple[Any, ...]], list[Rec]]:
        """Frozen accounts: the collection sorted once; range conditions on the sort field found by bisection,
        the rest of the filter tested on that slice only (a time window no longer scans the whole account)."""
        whole_key = (ctx.path, "", field, False)
        whole = self._ordered.get(whole_key)
        if whole is None:
            whole = self._sorted(recs, dynamic, field)
            self._ordered[whole_key] = whole
        keys, ordered = whole
        lo, hi, _rest = _bounds(keys, node, field)
        picked = range(lo, max(lo, hi))
        if node is not None:
            picked = [i for i in picked if evaluate(node, lambda name, r=ordered[i]: field_values(r, name, dynamic))]  # type: ignore[assignment,misc]
        return [keys[i] for i in picked], [ordered[i] for i in picked]

    @staticmethod
    def _sorted(
        recs: list[Rec], dynamic: Mapping[str, Callable[[Rec], Any]], field: str
    ) -> tuple[list[tuple[Any, ...]], list[Rec]]:
        def key(rec: Rec) -> tuple[Any, ...]:
            values = field_values(rec, field, dynamic)
            value = values[0] if values else None
            return (0, 0, rec.id) if value is None else (1, _sortable(value), rec.id)

        keyed = sorted(((key(r), r) for r in recs), key=lambda kr: kr[0])
        return [k for k, _ in keyed], [r for _, r in keyed]

    @staticmethod
    def _window(
        keys: Sequence[tuple[Any, ...]], size: int, desc: bool, cursor_text: str | None, sort: str
    ) -> tuple[int, int]:
        """[start, end) positions in the requested order for the page a cursor points at."""
        total = len(keys)
        if not cursor_text:
            return 0, min(size, total)
        cursor = decode_cursor(cursor_text)
        if cursor is None or cursor.get("s", "") != sort:
            raise invalid("Invalid page cursor for this request", parameter="page[cursor]")
        try:
            if "a" in cursor:
                edge = tuple(cursor["a"])
                start = total - bisect.bisect_left(keys, edge) if desc else bisect.bisect_right(keys, edge)
                return start, min(total, start + size)
            edge = tuple(cursor["b"])
            end = total - bisect.bisect_right(keys, edge) if desc else bisect.bisect_left(keys, edge)
            return max(0, end - size), end
        except TypeError as exc:
            raise invalid("Invalid page cursor for this request", parameter="page[cursor]") from exc

    def _effective_filter(self, op: Operation, ctx: RequestContext) -> Node | None:
        """The request's filter, plus Klaviyo's implicit ``equals(archived,false)`` for flows/campaigns."""
        node = cached_filter(ctx.params["filter"]) if ctx.params.get("filter") else None
        has_archived = node is not None and any(c.field == "archived" for c in conditions(node))
        if op.filters and "archived" in op.filters and not has_archived:
            default = Condition("equals", "archived", False)
            node = default if node is None else BoolOp("and", (node, default))
        return node

    def _document(
        self,
        op: Operation,
        ctx: RequestContext,
        recs: list[Rec],
        single: bool,
        dynamic: Mapping[str, Callable[[Rec], Any]] | None = None,
    ) -> dict[str, Any]:
        assert op.data is not None
        opts = self._options(ctx, dynamic)
        include = [i for i in ctx.params.get("include", "").split(",") if i]
        related = self.data.related_ids
        data = [render(r, op.data, opts, related, include) for r in recs]
        doc: dict[str, Any] = {"data": data[0] if single else data}
        if include:
            doc["included"] = self._included(op, recs, include, opts)
        if single:
            doc["links"] = {"self": ctx.url()}
        return doc

    def _included(
        self, op: Operation, recs: list[Rec], include: list[str], opts: RenderOptions
    ) -> list[dict[str, Any]]:
        assert op.data is not None
        seen: set[tuple[str, str]] = set()
        out: list[dict[str, Any]] = []
        inc_opts = RenderOptions(
            opts.base,
            opts.fields,
            opts.additional,
            opts.omitted,
            frozenset(),
            {"profile_count": self._profile_count},
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

    # ---- events ----------------------------------------------------------------------------------
    def events(self, op: Operation, ctx: RequestContext) -> dict[str, Any] | bytes:
        store = self.data.events
        query = EventQuery()
        text = ctx.params.get("filter")
        if text:
            for cond in conditions(cached_filter(text)):
                _apply_event_condition(query, cond)
        sort = ctx.params.get("sort", "datetime")
        desc = sort.startswith("-")
        size = int(ctx.params.get("page[size]") or fixed_page_size(op))
        cursor_text = ctx.params.get("page[cursor]")
        after: tuple[int, int] | None = None
        before: tuple[int, int] | None = None
        if cursor_text:
            cursor = decode_cursor(cursor_text)
            if cursor is None or cursor.get("s", "datetime") != sort or not ({"a", "b"} & set(cursor)):
                raise invalid("Invalid page cursor for this request", parameter="page[cursor]")
            try:
                edge = tuple(int(x) for x in cursor.get("a", cursor.get("b")) or ())
            except (TypeError, ValueError) as exc:
                raise invalid("Invalid page cursor for this request", parameter="page[cursor]") from exc
            if len(edge) != 2:
                raise invalid("Invalid page cursor for this request", parameter="page[cursor]")
            if "a" in cursor:
                after = (edge[0], edge[1])
            else:
                before = (edge[0], edge[1])
        keys: Sequence[tuple[int, int]]
        if before is not None:
            back = store.page(query, size, not desc, before, plain=self.lazy)
            keys = list(reversed(back))
            more_before = len(store.page(query, 1, not desc, keys[0], plain=self.lazy)) > 0 if keys else False
            more_after = True
        else:
            keys = store.page(query, size + 1, desc, after, plain=self.lazy)
            more_after = len(keys) > size
            keys = keys[:size]
            more_before = after is not None
        links: dict[str, Any] = {"self": ctx.url()}
        links["next"] = ctx.page_url(encode_cursor({"a": list(keys[-1]), "s": sort})) if keys and more_after else None
        links["prev"] = ctx.page_url(encode_cursor({"b": list(keys[0]), "s": sort})) if keys and more_before else None
        include = [i for i in ctx.params.get("include", "").split(",") if i]
        # Sparse fields of included types are fine.
        if self.lazy and _fast_events(op) and "fields[event]" not in ctx.params:
            base = _dumps(ctx.base)[1:-1]
            body = self.data.event_pages.render_page(keys, base, "attributions" in include)
            parts = ['{"data":[', body, '],"links":', _dumps(links)]
            if include:
                parts += [',"included":[', ",".join(self._event_included(op, ctx, keys, include)), "]"]
            parts.append("}")
            return "".join(parts).encode()
        recs = [self.data.event_pages.record(idx) for _t, idx in keys]
        doc = self._document(op, ctx, recs, single=False)
        doc["links"] = links
        return doc

    def _event_included(
        self, op: Operation, ctx: RequestContext, keys: Sequence[tuple[int, int]], include: list[str]
    ) -> list[str]:
        """Included metrics/profiles of an events page as JSON text (rendered once per data version), and
        the page's attributions (each belongs to one event: never worth keeping)."""
        store = self.data.events
        seen: dict[tuple[str, str], None] = {}
        indices = EventPages.indices_of(keys)
        if isinstance(indices, range) and abs(indices.step) == 1 and "profile" not in include:
            indices = indices[:PATTERN_LEN]  # metrics repeat with this period: the rest adds none
        for idx in indices:
            if "metric" in include:
                seen[("metric", store.metric_ids[store.metric_of(idx)])] = None
            if "profile" in include:
                seen[("profile", store.profile_of(idx))] = None
        full = self._options(ctx)
        opts = RenderOptions(
            ctx.base, full.fields, full.additional, additional_only(), frozenset(), {}, full.revision, full.extra
        )
        out = []
        attribution_shape = op.included.get("attribution")
        if "attributions" in include and attribution_shape is not None:
            related, credit = self.data.related_ids, self.data.attributions
            for _t, idx in keys:
                out += [_dumps(render(a, attribution_shape, opts, related)) for a in credit.attributions(idx)]
        for rtype, rid in seen:
            sparse = tuple(sorted(full.fields.get(rtype, ()))), tuple(sorted(full.additional.get(rtype, ())))
            key = (op.template, rtype, rid, ctx.base, self.data.generation, sparse, str(full.extra.get(rtype) or ""))
            text = self._cache.get(key)
            if text is None:
                rec = self.data.get(rtype, rid)
                shape = op.included.get(rtype)
                if rec is None or shape is None:
                    continue
                text = _dumps(render(rec, shape, opts, self.data.related_ids))
                if len(self._cache) > 50_000:
                    self._cache.clear()
                self._cache[key] = text
            out.append(text)
        return out


def _apply_event_condition(query: EventQuery, cond: Condition) -> None:
    """Narrow an event query by one (already validated) filter condition."""
    if cond.field in ("datetime", "timestamp"):
        if isinstance(cond.value, datetime):
            micros = dt_micros(cond.value)
            lo_incl, lo_excl, hi_incl, hi_excl = micros, micros + 1, micros, micros - 1
        else:
            seconds = float(cond.value)
            whole = int(seconds // 1)
            exact = seconds == whole
            # timestamp is whole seconds of datetime: compare on that granularity
            lo_incl = (whole if exact else whole + 1) * SECOND
            lo_excl = (whole + 1) * SECOND
            hi_incl = (whole + 1) * SECOND - 1
            hi_excl = (whole if exact else whole + 1) * SECOND - 1
        low = {"greater-or-equal": lo_incl, "greater-than": lo_excl}.get(cond.op)
        high = {"less-or-equal": hi_incl, "less-than": hi_excl}.get(cond.op)
        if low is not None:
            query.min_t = low if query.min_t is None else max(query.min_t, low)
        if high is not None:
            query.max_t = high if query.max_t is None else min(query.max_t, high)
        return
    if cond.field in ("metric_id", "profile_id") and cond.op in ("equals", "any"):
        values = frozenset(cond.value if cond.is_list else (cond.value,))
        attr = "metric_ids" if cond.field == "metric_id" else "profile_ids"
        current = getattr(query, attr)
        setattr(query, attr, values if current is None else current & values)


def _bounds(keys: Sequence[tuple[Any, ...]], node: Node | None, field: str) -> tuple[int, int, Node | None]:
    """Positions [lo, hi) that the range conditions on `field` (at the filter's top level) leave, found by
    bisection over ascending `(1, value, id)` keys, and the rest of the filter (None: nothing left to test)."""
    top = (
        [node]
        if isinstance(node, Condition)
        else list(node.args)
        if isinstance(node, BoolOp) and node.op == "and"
        else []
    )
    if node is not None and not top:
        return 0, len(keys), node
    lo, hi, rest = 0, len(keys), []
    for cond in top:
        if not isinstance(cond, Condition) or cond.field != field or cond.op not in _RANGE_OPS:
            rest.append(cond)
            continue
        bound = _sortable(cond.value) if not isinstance(cond.value, datetime) else dt_micros(cond.value)
        if cond.op == "greater-or-equal":
            lo = max(lo, bisect.bisect_left(keys, (1, bound)))
        elif cond.op == "greater-than":
            lo = max(lo, bisect.bisect_right(keys, (1, bound, "\uffff")))
        elif cond.op == "less-than":
            hi = min(hi, bisect.bisect_left(keys, (1, bound)))
        else:
            hi = min(hi, bisect.bisect_right(keys, (1, bound, "\uffff")))
    remaining: Node | None = None if not rest else rest[0] if len(rest) == 1 else BoolOp("and", tuple(rest))
    return lo, max(lo, hi), remaining


_RANGE_OPS = frozenset({"greater-or-equal", "greater-than", "less-than", "less-or-equal"})


def shape_for(op: Operation) -> ResourceShape | None:
    return op.data
