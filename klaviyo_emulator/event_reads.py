"""GET /api/events: the event store's query and pages (a lazy account's pages rendered as text by EventPages),
with the metrics, profiles and attributions a page includes."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .api_base import ReadModes, RequestContext, additional_only, dumps, fixed_page_size, invalid
from .contract import cached_filter
from .cursor import decode_cursor, encode_cursor
from .data import AccountData
from .documents import Documents
from .event_pages import EventPages
from .events import PATTERN_LEN, EventQuery
from .filters import Condition, conditions, dt_micros
from .records import SECOND
from .render import RenderOptions, render
from .spec import Operation, get_spec


class EventReads:
    """Answers events pages; keeps the included metrics and profiles rendered (per data version)."""

    def __init__(self, data: AccountData, documents: Documents, modes: ReadModes) -> None:
        self.data = data
        self.documents = documents
        self.modes = modes
        self._cache: dict[tuple[Any, ...], str] = {}

    def page(self, op: Operation, ctx: RequestContext) -> dict[str, Any] | bytes:
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
            back = store.page(query, size, not desc, before, plain=self.modes.lazy)
            keys = list(reversed(back))
            more_before = len(store.page(query, 1, not desc, keys[0], plain=self.modes.lazy)) > 0 if keys else False
            more_after = True
        else:
            keys = store.page(query, size + 1, desc, after, plain=self.modes.lazy)
            more_after = len(keys) > size
            keys = keys[:size]
            more_before = after is not None
        links: dict[str, Any] = {"self": ctx.url()}
        links["next"] = ctx.page_url(encode_cursor({"a": list(keys[-1]), "s": sort})) if keys and more_after else None
        links["prev"] = ctx.page_url(encode_cursor({"b": list(keys[0]), "s": sort})) if keys and more_before else None
        include = [i for i in ctx.params.get("include", "").split(",") if i]
        # Sparse fields of included types are fine.
        if self.modes.lazy and _fast_events(op) and "fields[event]" not in ctx.params:
            base = dumps(ctx.base)[1:-1]
            body = self.data.event_pages.render_page(keys, base, "attributions" in include)
            parts = ['{"data":[', body, '],"links":', dumps(links)]
            if include:
                parts += [',"included":[', ",".join(self._event_included(op, ctx, keys, include)), "]"]
            parts.append("}")
            return "".join(parts).encode()
        recs = [self.data.event_pages.record(idx) for _t, idx in keys]
        doc = self.documents.document(op, ctx, recs, single=False)
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
        full = self.documents.options(ctx)
        opts = RenderOptions(
            ctx.base, full.fields, full.additional, additional_only(), frozenset(), {}, full.revision, full.extra
        )
        out = []
        attribution_shape = op.included.get("attribution")
        if "attributions" in include and attribution_shape is not None:
            related, credit = self.data.related_ids, self.data.attributions
            for _t, idx in keys:
                out += [dumps(render(a, attribution_shape, opts, related)) for a in credit.attributions(idx)]
        for rtype, rid in seen:
            sparse = tuple(sorted(full.fields.get(rtype, ()))), tuple(sorted(full.additional.get(rtype, ())))
            key = (op.template, rtype, rid, ctx.base, self.data.generation, sparse, str(full.extra.get(rtype) or ""))
            text = self._cache.get(key)
            if text is None:
                rec = self.data.get(rtype, rid)
                shape = op.included.get(rtype)
                if rec is None or shape is None:
                    continue
                text = dumps(render(rec, shape, opts, self.data.related_ids))
                if len(self._cache) > 50_000:
                    self._cache.clear()
                self._cache[key] = text
            out.append(text)
        return out


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
