"""A stream's first-page query, from the spec's rules: largest page, filters, sort, includes, sparse fields.

Later pages follow `links.next`, whose query carries all of this plus the cursor. A context may carry explicit
bounds (`WINDOW_START` / `WINDOW_END`, ISO timestamps or None): time windows, and partitions fetched ahead on a
worker, whose bounds the main thread read from the state beforehand. Without them the bound is the bookmark
(or start_date) less the lookback, read from the state: main thread only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from klaviyo_core import spec
from klaviyo_core.timestamps import parse_utc, utc_iso

WINDOW_START = "window_start"
WINDOW_END = "window_end"
WINDOW_KEYS = (WINDOW_START, WINDOW_END)


def spec_template(path: str) -> str:
    """`/api/lists/{list_id}/profiles` -> the spec's `/api/lists/{id}/profiles`."""
    template = spec.match_path(re.sub(r"\{[^}]+\}", "x", path))
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


class QueryRules(Protocol):
    """A stream as its query sees it: what it declares, its catalog and state, and the hooks its subclasses
    override (`static_filters`, `lookback`, `start_bound`, `sparse_fields`)."""

    @property
    def replication_key(self) -> str | None: ...

    @property
    def sort_by(self) -> str | None: ...

    @property
    def filter_field(self) -> str | None: ...

    @property
    def includes(self) -> Sequence[str]: ...

    @property
    def additional_fields(self) -> Mapping[str, str]: ...

    @property
    def primary_keys(self) -> Sequence[str]: ...

    @property
    def sideloads(self) -> Mapping[str, str]: ...

    @property
    def child_streams(self) -> Sequence[Any]: ...

    @property
    def schema(self) -> dict[str, Any]: ...

    @property
    def mask(self) -> Mapping[tuple[str, ...], bool]: ...

    @property
    def config(self) -> Mapping[str, Any]: ...

    def get_context_state(self, context: Any) -> dict[str, Any]: ...

    def static_filters(self, context: Mapping[str, Any] | None) -> list[str]: ...

    def lookback(self, context: Mapping[str, Any] | None) -> timedelta: ...

    def start_bound(self, context: Mapping[str, Any] | None) -> datetime | None: ...

    def sparse_fields(self) -> dict[str, str]: ...


@dataclass
class Query:
    """One stream's query building: the spec's rules for its endpoint applied to what the stream declares."""

    rules: QueryRules
    endpoint: spec.Endpoint
    template: str
    method: str
    #: The run's end_date: caps every upper bound.
    end_date: datetime | None

    @property
    def sort_value(self) -> str | None:
        """Sort value sent to Klaviyo: the stream's, else the replication key when the endpoint can sort on it."""
        rules = self.rules
        if rules.sort_by is not None:
            return rules.sort_by
        if rules.replication_key and rules.replication_key in self.endpoint.sorts:
            return rules.replication_key
        return None

    @property
    def is_sorted(self) -> bool:
        return bool(self.rules.replication_key and self.sort_value == self.rules.replication_key)

    def has_bookmark(self, context: Mapping[str, Any] | None) -> bool:
        """A previous run left a bookmark here (not just a start_date)."""
        state = self.rules.get_context_state(dict(context) if context else None)
        return bool(state.get("replication_key_value"))

    def start_bound(self, context: Mapping[str, Any] | None) -> datetime | None:
        """Where this run reads from: the bookmark (or start_date), less the lookback. Main thread."""
        if not self.rules.replication_key:
            return None
        start = self.starting_timestamp(context)
        return start - self.rules.lookback(context) if start is not None else None

    def starting_timestamp(self, context: Mapping[str, Any] | None) -> datetime | None:
        """The bookmark, or start_date when that is later (what the SDK's starting value will be), read from
        the state directly: partitions fetched ahead start before the SDK writes their starting value."""
        rules = self.rules
        state = rules.get_context_state(dict(context) if context else None)
        candidates = [rules.config.get("start_date")]
        if state.get("replication_key") in (None, rules.replication_key):
            candidates.append(state.get("replication_key_value"))
        parsed = [at for at in (parse_utc(value) for value in candidates if value) if at is not None]
        return max(parsed) if parsed else None

    def bounds(self, context: Mapping[str, Any] | None) -> tuple[datetime | None, datetime | None]:
        """The replication range of this request: explicit in a window context, else from the state."""
        if context is not None and WINDOW_START in context:
            lower, upper = context.get(WINDOW_START), context.get(WINDOW_END)
            return parse_utc(lower), parse_utc(upper)
        return self.rules.start_bound(without_window(context)), None

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
        key = self.rules.replication_key
        if not key:
            return []
        field = self.rules.filter_field or key
        out: list[str] = []
        if lower is not None:
            operator = self.endpoint.lower_bound_operator(field)
            if operator == "greater-than":
                # Only strict filtering exists here: step back a second so records tied with the
                # bound are read again rather than lost.
                lower -= timedelta(seconds=1)
            out.append(f"{operator}({field},{utc_iso(lower)})")
        end = self.end_date
        if end is not None and (upper is None or end < upper):
            upper = end
        if upper is not None and self.endpoint.upper_bound_operator(field):
            out.append(f"less-than({field},{utc_iso(upper)})")
        return out

    def first_page_params(self, context: Mapping[str, Any] | None) -> dict[str, str]:
        """Maximum page size, filters, sort, includes, sparse fields."""
        rules = self.rules
        params: dict[str, str] = {}
        if self.endpoint.max_page_size:
            params["page[size]"] = str(self.endpoint.max_page_size)
        lower, upper = self.bounds(context)
        filters = [*rules.static_filters(without_window(context)), *self.bound_filters(lower, upper)]
        if filters:
            params["filter"] = ",".join(filters)
        if self.sort_value:
            params["sort"] = self.sort_value
        includes = [*rules.includes, *self.active_sideloads()]
        if includes:
            params["include"] = ",".join(includes)
        params.update(rules.additional_fields)
        params.update(rules.sparse_fields())
        return params

    def sparse_fields(self) -> dict[str, str]:
        """`fields[<type>]=` listing only the attributes the catalog selects, when some are deselected.

        The key, the replication key and relationship ids are always kept.
        """
        rules = self.rules
        param = f"fields[{spec.resource_type(self.template, self.method)}]"
        allowed = self.endpoint.sparse_fields.get(param)
        properties = list(rules.schema.get("properties", {}))
        if not allowed or not properties:
            return {}
        selected = [p for p in properties if rules.mask.get(("properties", p), True)]
        if len(selected) == len(properties):
            return {}
        keep = {*rules.primary_keys, rules.replication_key or ""}
        attributes = [p for p in properties if p in allowed and (p in selected or p in keep)]
        return {param: ",".join(attributes)} if attributes else {}

    def active_sideloads(self) -> list[str]:
        """The includes whose child stream (or one of its descendants) is selected."""
        children = {s.name: s for s in self.rules.child_streams}
        return [
            rel
            for rel, name in self.rules.sideloads.items()
            if (child := children.get(name)) is not None and (child.selected or child.has_selected_descendents)
        ]
