"""Collections of the read side: the request's filter applied, sorted, and cut into cursor pages."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from .api_base import ReadModes, RequestContext, field_values, fixed_page_size, invalid, sortable
from .contract import cached_filter
from .cursor import decode_cursor, encode_cursor
from .documents import Documents
from .filters import BoolOp, Condition, Node, conditions, dt_micros, evaluate
from .lazy import LazyMembers, LazyProfiles, Sorted
from .records import Rec
from .render import identifier
from .spec import Operation


class Listing:
    """Serves collections; keeps the sorted collections of a frozen account."""

    def __init__(self, documents: Documents, modes: ReadModes) -> None:
        self.documents = documents
        self.modes = modes
        self._ordered: dict[tuple[str, str, str, bool], tuple[Sequence[tuple[Any, ...]], Sequence[Rec]]] = {}

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
        cached = self._ordered.get(cache_key) if self.modes.frozen else None
        if cached is None and lazy is not None:
            cached = self._lazy_order(op, ctx, lazy, dynamic or {}, sort.lstrip("-"))
        if cached is None:
            cached = self._order(op, ctx, recs, dynamic or {}, sort.lstrip("-"))
            if self.modes.frozen:
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
        doc = self.documents.document(op, ctx, page, single=False, dynamic=dynamic)
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
        if self.modes.frozen and field:
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
            return (0, 0, rec.id) if value is None else (1, sortable(value), rec.id)

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
        bound = sortable(cond.value) if not isinstance(cond.value, datetime) else dt_micros(cond.value)
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


_RANGE_OPS = frozenset({"greater-or-equal", "greater-than", "less-than", "less-or-equal"})
