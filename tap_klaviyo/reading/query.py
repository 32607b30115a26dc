"""A stream's first-page query, from the spec's rules: largest page, filters, sort, includes, sparse fields.

Later pages follow `links.next`, whose query carries all of this plus the cursor. A context may carry explicit
bounds (`WINDOW_START` / `WINDOW_END`, ISO timestamps or None): time windows, and partitions fetched ahead on a
worker, whose bounds the main thread read from the state beforehand. Without them the bound is the bookmark
(or start_date) less the lookback, read from the state: main thread only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from klaviyo_core import spec
from klaviyo_core.timestamps import parse_utc, utc_iso

WINDOW_START = "window_start"
WINDOW_END = "window_end"
WINDOW_KEYS = (WINDOW_START, WINDOW_END)

_PLACEHOLDER = re.compile(r"\{[^}]+\}")


def spec_template(path: str) -> str:
    """`/api/lists/{list_id}/profiles` -> the spec's `/api/lists/{id}/profiles`."""
    template = spec.match_path(_PLACEHOLDER.sub("x", path))
    if template is None:
        msg = f"{path} is not a Klaviyo API path"
        raise ValueError(msg)
    return template


def without_window(context: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The partition a (window) context belongs to."""
    if context is None:
        return None
    plain = {k: v for k, v in context.items() if k not in WINDOW_KEYS}
    return plain or None


class QueryMixin:
    """Query building for KlaviyoStream (kept apart so the stream class reads in one sitting)."""

    #: Sort value sent to Klaviyo; by default the replication key when the endpoint can sort on it.
    sort_by: ClassVar[str | None] = None
    #: Server-side field the bookmark filters on (defaults to the replication key).
    filter_field: ClassVar[str | None] = None
    includes: ClassVar[tuple[str, ...]] = ()
    additional_fields: ClassVar[dict[str, str]] = {}

    endpoint: spec.Endpoint
    template: str
    replication_key: str | None
    primary_keys: ClassVar[tuple[str, ...]]
    schema: dict[str, Any]
    mask: Any
    run: Any
    sideloads: ClassVar[dict[str, str]]
    child_streams: list[Any]
    if TYPE_CHECKING:  # provided by the SDK's Stream

        def get_starting_timestamp(self, context: Any) -> datetime | None: ...

        def get_context_state(self, context: Any) -> dict[str, Any]: ...

        @property
        def config(self) -> Mapping[str, Any]: ...

    @property
    def sort_value(self) -> str | None:
        if self.sort_by is not None:
            return self.sort_by
        if self.replication_key and self.replication_key in self.endpoint.sorts:
            return self.replication_key
        return None

    @property
    def is_sorted(self) -> bool:
        return bool(self.replication_key and self.sort_value == self.replication_key)

    def has_bookmark(self, context: Mapping[str, Any] | None) -> bool:
        """A previous run left a bookmark here (not just a start_date)."""
        state = self.get_context_state(dict(context) if context else None)
        return bool(state.get("replication_key_value"))

    def start_bound(self, context: Mapping[str, Any] | None) -> datetime | None:
        """Where this run reads from: the bookmark (or start_date), less the lookback. Main thread."""
        if not self.replication_key:
            return None
        start = self.starting_timestamp(context)
        return start - self.lookback(context) if start is not None else None

    def starting_timestamp(self, context: Mapping[str, Any] | None) -> datetime | None:
        """The bookmark, or start_date when that is later (what the SDK's starting value will be), read from
        the state directly: partitions fetched ahead start before the SDK writes their starting value."""
        state = self.get_context_state(dict(context) if context else None)
        candidates = [self.config.get("start_date")]
        if state.get("replication_key") in (None, self.replication_key):
            candidates.append(state.get("replication_key_value"))
        parsed = [at for at in (parse_utc(value) for value in candidates if value) if at is not None]
        return max(parsed) if parsed else None

    def lookback(self, context: Mapping[str, Any] | None) -> timedelta:
        return timedelta(0)

    def static_filters(self, context: Mapping[str, Any] | None) -> list[str]:
        """Filters that define the stream or partition itself (channel, archived, ...)."""
        return []

    def bounds(self, context: Mapping[str, Any] | None) -> tuple[datetime | None, datetime | None]:
        """The replication range of this request: explicit in a window context, else from the state."""
        if context is not None and WINDOW_START in context:
            lower, upper = context.get(WINDOW_START), context.get(WINDOW_END)
            return parse_utc(lower), parse_utc(upper)
        return self.start_bound(without_window(context)), None

    def with_bounds(self, context: Mapping[str, Any] | None) -> dict[str, Any]:
        """The context with its bounds read now (main thread), so a worker can send its requests."""
        lower, upper = self.bounds(context)
        return {
            **(context or {}),
            WINDOW_START: utc_iso(lower) if lower else None,
            WINDOW_END: utc_iso(upper) if upper else None,
        }

    def bound_filters(self, lower: datetime | None, upper: datetime | None) -> list[str]:
        """`from <= key < to` in the operators this endpoint allows (end_date caps `to`)."""
        if not self.replication_key:
            return []
        field = self.filter_field or self.replication_key
        out: list[str] = []
        if lower is not None:
            operator = self.endpoint.lower_bound_operator(field)
            if operator == "greater-than":
                # Only strict filtering exists here: step back a second so records tied with the
                # bound are read again rather than lost.
                lower -= timedelta(seconds=1)
            out.append(f"{operator}({field},{utc_iso(lower)})")
        end = self.run.end_date
        if end is not None and (upper is None or end < upper):
            upper = end
        if upper is not None and self.endpoint.upper_bound_operator(field):
            out.append(f"less-than({field},{utc_iso(upper)})")
        return out

    def first_page_params(self, context: Mapping[str, Any] | None) -> dict[str, str]:
        """Maximum page size, filters, sort, includes, sparse fields."""
        params: dict[str, str] = {}
        if self.endpoint.max_page_size:
            params["page[size]"] = str(self.endpoint.max_page_size)
        lower, upper = self.bounds(context)
        filters = [*self.static_filters(without_window(context)), *self.bound_filters(lower, upper)]
        if filters:
            params["filter"] = ",".join(filters)
        if self.sort_value:
            params["sort"] = self.sort_value
        includes = [*self.includes, *self.active_sideloads()]
        if includes:
            params["include"] = ",".join(includes)
        params.update(self.additional_fields)
        params.update(self.sparse_fields())
        return params

    def sparse_fields(self) -> dict[str, str]:
        """`fields[<type>]=` listing only the attributes the catalog selects, when some are deselected.

        The key, the replication key and relationship ids are always kept.
        """
        resource_type = spec.resource_type(self.template, getattr(self, "method", "get"))
        param = f"fields[{resource_type}]"
        allowed = self.endpoint.sparse_fields.get(param)
        properties = list(self.schema.get("properties", {}))
        if not allowed or not properties:
            return {}
        selected = [p for p in properties if self.mask.get(("properties", p), True)]
        if len(selected) == len(properties):
            return {}
        keep = {*self.primary_keys, self.replication_key or ""}
        attributes = [p for p in properties if p in allowed and (p in selected or p in keep)]
        return {param: ",".join(attributes)} if attributes else {}

    def active_sideloads(self) -> list[str]:
        return [rel for rel, child in self.sideloads.items() if self.sideload_active(child)]

    def sideload_active(self, child: str) -> bool:
        stream = next((s for s in self.child_streams if s.name == child), None)
        return stream is not None and (stream.selected or stream.has_selected_descendents)
