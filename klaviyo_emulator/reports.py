"""POST reporting endpoints (campaign/flow/form/segment values and series) and metric aggregates.

Numbers are the account's own: campaign, flow and form statistics count its events as Klaviyo does, by
send date (klaviyo_emulator/report_stats.py), so a campaign's conversion value is the revenue of the orders
Klaviyo attributed to it; memberships count real ``joined_group_at`` values, and metric aggregates count
the account's events. A report over a range equals the sum of reports over its parts (counts and values),
and re-reading a range gives the same numbers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from . import report_stats
from .api import ApiError, RequestContext, invalid
from .contract import aggregate_conditions, cached_filter, timeframe_bounds
from .cursor import decode_cursor, encode_cursor
from .data import AccountData
from .events import EventQuery
from .filters import Condition, evaluate, path_values
from .records import DAY, SECOND, UTC, fmt, micros
from .spec import Operation

SEGMENT_DATA_START = datetime(2023, 6, 1, tzinfo=UTC)
#: Results per page of a values/series report; more continue through ``page_cursor`` (a query parameter).
#: Klaviyo does not publish its page size; tests lower this to exercise the cursor.
REPORT_PAGE_SIZE = 500
SEND_CHANNELS = {
    "email": "email",
    "sms": "sms",
    "mobile_push": "push-notification",
    "push": "push-notification",
}


def run_report(data: AccountData, op: Operation, ctx: RequestContext) -> dict[str, Any]:
    """Answer one (already validated) POST report or metric-aggregate query."""
    attrs = (ctx.body or {}).get("data", {}).get("attributes", {})
    with data.lock:
        if op.template == "/api/metric-aggregates":
            return metric_aggregate(data, attrs, ctx)
        kind = op.template.split("/")[2].rsplit("-", 2)[0]  # campaign / flow / form / segment
        series = op.template.endswith("-series-reports")
        if "conversion_metric_id" in attrs and attrs["conversion_metric_id"] not in data.store["metric"]:
            raise invalid(
                f"Metric {attrs['conversion_metric_id']} was not found.",
                pointer="/data/attributes/conversion_metric_id",
            )
        start, end = resolve_timeframe(attrs["timeframe"], data.now)
        if kind == "segment" and start < SEGMENT_DATA_START:
            raise invalid(
                "Data is unavailable before June 1st, 2023. Please use a time frame after this date.",
                pointer="/data/attributes/timeframe",
            )
        buckets = _buckets(start, end, attrs.get("interval")) if series else [(start, end)]
        rows = _rows(data, kind, attrs, start, end)
        results = []
        for groupings, daily in rows:
            stats: dict[str, Any] = {}
            for stat in attrs["statistics"]:
                values = [_stat(kind, stat, daily, lo, hi) for lo, hi in buckets]
                stats[stat] = values if series else values[0]
            results.append({"groupings": groupings, "statistics": stats})
        offset = (
            int((decode_cursor(ctx.params["page_cursor"]) or {}).get("o", 0)) if ctx.params.get("page_cursor") else 0
        )
        more = offset + REPORT_PAGE_SIZE < len(results)
        body: dict[str, Any] = {"results": results[offset : offset + REPORT_PAGE_SIZE]}
        if series:
            body["date_times"] = [fmt(micros(lo)) for lo, _hi in buckets]
        doc_type = op.template.split("/")[2][:-1]
        related = _related(kind, rows)
        links = {"self": ctx.url()}
        if more:
            pairs = [(k, v) for k, v in ctx.pairs if k != "page_cursor"]
            links["next"] = ctx.url([*pairs, ("page_cursor", encode_cursor({"o": offset + REPORT_PAGE_SIZE}))])
        return {
            "data": {"type": doc_type, "attributes": body, "relationships": related_links(related, ctx)},
            "links": links,
        }


def related_links(related: dict[str, tuple[str, list[str]]], ctx: RequestContext) -> dict[str, Any]:
    out = {}
    for name, (rtype, ids) in related.items():
        out[name] = {
            "data": [{"type": rtype, "id": i} for i in ids],
            "links": {"self": f"{ctx.url()}relationships/{name}/", "related": f"{ctx.url()}{name}/"},
        }
    return out


def _related(kind: str, rows: list[tuple[dict[str, Any], Any]]) -> dict[str, tuple[str, list[str]]]:
    def ids(key: str) -> list[str]:
        return list(dict.fromkeys(str(g[key]) for g, _ in rows if key in g))

    if kind == "campaign":
        return {
            "campaigns": ("campaign", ids("campaign_id")),
            "campaign-messages": ("campaign-message", ids("campaign_message_id")),
        }
    if kind == "flow":
        return {"flows": ("flow", ids("flow_id")), "flow-messages": ("flow-message", ids("flow_message_id"))}
    if kind == "form":
        return {"forms": ("form", ids("form_id"))}
    return {"segments": ("segment", ids("segment_id"))}


# ---- timeframes ----------------------------------------------------------------------------------
def resolve_timeframe(timeframe: dict[str, Any], now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of a timeframe: custom start/end, or a ``key`` relative to today (UTC)."""
    bounds = timeframe_bounds(timeframe)
    if bounds is not None:
        return bounds[0].astimezone(UTC), bounds[1].astimezone(UTC)
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    key = timeframe["key"]
    month = datetime(now.year, now.month, 1, tzinfo=UTC)
    previous_month = (month - timedelta(days=1)).replace(day=1)
    week = today - timedelta(days=today.weekday())
    spans = {
        "today": (today, today + timedelta(days=1)),
        "yesterday": (today - timedelta(days=1), today),
        "this_week": (week, today + timedelta(days=1)),
        "last_week": (week - timedelta(days=7), week),
        "this_month": (month, today + timedelta(days=1)),
        "last_month": (previous_month, month),
        "this_year": (datetime(now.year, 1, 1, tzinfo=UTC), today + timedelta(days=1)),
        "last_year": (datetime(now.year - 1, 1, 1, tzinfo=UTC), datetime(now.year, 1, 1, tzinfo=UTC)),
        "last_7_days": (today - timedelta(days=7), today),
        "last_30_days": (today - timedelta(days=30), today),
        "last_90_days": (today - timedelta(days=90), today),
        "last_3_months": (_add_months(month, -3), month),
        "last_12_months": (_add_months(month, -12), month),
        "last_365_days": (today - timedelta(days=365), today),
    }
    return spans[key]


def _add_months(value: datetime, months: int) -> datetime:
    index = value.year * 12 + value.month - 1 + months
    return value.replace(year=index // 12, month=index % 12 + 1, day=1)


def _buckets(start: datetime, end: datetime, interval: str | None) -> list[tuple[datetime, datetime]]:
    """Consecutive [lo, hi) buckets covering [start, end), aligned to the interval."""
    out = []
    step_start = _align(start, interval or "daily")
    while step_start < end:
        step_end = _next(step_start, interval or "daily")
        out.append((max(step_start, start), min(step_end, end)))
        step_start = step_end
    return out


def _align(value: datetime, interval: str) -> datetime:
    if interval in ("hourly", "hour"):
        return value.replace(minute=0, second=0, microsecond=0)
    day = value.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval in ("weekly", "week"):
        return day - timedelta(days=day.weekday())
    if interval in ("monthly", "month"):
        return day.replace(day=1)
    return day


def _next(value: datetime, interval: str) -> datetime:
    if interval in ("hourly", "hour"):
        return value + timedelta(hours=1)
    if interval in ("weekly", "week"):
        return value + timedelta(days=7)
    if interval in ("monthly", "month"):
        return _add_months(value, 1)
    return value + timedelta(days=1)


# ---- values/series rows --------------------------------------------------------------------------
class _Members:
    """Segment membership counts from real ``joined_group_at`` values."""

    def __init__(self, joined: Iterable[int]) -> None:
        self.joined = sorted(joined)

    def added(self, lo: datetime, hi: datetime) -> int:
        a, b = micros(lo), micros(hi)
        return sum(1 for t in self.joined if a <= t < b)

    def total(self, at: datetime) -> int:
        cut = micros(at)
        return sum(1 for t in self.joined if t < cut)


def _rows(data: AccountData, kind: str, attrs: dict[str, Any], start: datetime, end: datetime) -> list[Any]:
    """(groupings, what answers its statistics) per row: a `Row` of the account's events (campaign, flow,
    form) or the segment's `_Members`."""
    node = cached_filter(attrs["filter"]) if attrs.get("filter") else None
    rows: list[tuple[dict[str, Any], Any]] = []
    counted = report_stats.tallies(data, attrs.get("conversion_metric_id")) if kind != "segment" else None
    if kind == "campaign":
        assert counted is not None
        group_by = attrs.get("group_by") or ["campaign_id", "campaign_message_id", "send_channel"]
        for campaign in data.records("campaign"):
            send = campaign.attrs.get("send_time")
            if not send:
                continue
            sent = micros(datetime.fromisoformat(send))
            # Campaigns sent before the timeframe are still listed (their late activity), with nothing in it.
            if not (sent < micros(end) and max(sent + 3 * DAY, micros(data.now)) > micros(start)):
                continue
            for msg_id in campaign.rels.get("campaign-messages", []):
                msg = data.store["campaign-message"][msg_id]
                values = {
                    "campaign_id": campaign.id,
                    "campaign_message_id": msg_id,
                    "campaign_message_name": msg.attrs.get("label"),
                    "send_channel": SEND_CHANNELS[campaign.extra["channel"]],
                    "tag_id": campaign.rels.get("tags", []),
                    "text_message_format": "sms" if campaign.extra["channel"] == "sms" else None,
                    "variation": None,
                    "variation_name": None,
                    "group": None,
                    "group_name": None,
                    "tag_name": [data.store["tag"][t].attrs["name"] for t in campaign.rels.get("tags", [])],
                }
                events = counted.messages.get(msg_id, report_stats.Events())
                rows.append((values, [report_stats.Part(events, msg_id in counted.sms, sent_at=sent)]))
    elif kind == "flow":
        assert counted is not None
        group_by = attrs.get("group_by") or ["flow_id", "flow_message_id", "send_channel"]
        for message in data.records("flow-message"):
            action = data.store["flow-action"][message.rels["flow-action"]]
            flow = data.store["flow"][action.rels["flow"]]
            values = {
                "flow_id": flow.id,
                "flow_message_id": message.id,
                "flow_message_name": message.extra.get("name"),
                "flow_name": flow.attrs["name"],
                "send_channel": SEND_CHANNELS.get(message.attrs["channel"], message.attrs["channel"]),
                "tag_id": flow.rels.get("tags", []),
                "tag_name": [data.store["tag"][t].attrs["name"] for t in flow.rels.get("tags", [])],
                "text_message_format": "sms" if message.attrs["channel"] == "sms" else None,
                "variation": None,
                "variation_name": None,
            }
            events = counted.messages.get(message.id, report_stats.Events())
            rows.append((values, [report_stats.Part(events, message.id in counted.sms)]))
    elif kind == "form":
        assert counted is not None
        group_by = attrs.get("group_by") or ["form_id"]
        for form in data.records("form"):
            versions = form.rels.get("form-versions", []) if "form_version_id" in group_by else [None]
            events = counted.forms.get(form.id, report_stats.Events())
            for k, version in enumerate(versions):
                values = {"form_id": form.id, "form_version_id": version}
                share = (k, len(versions)) if version is not None else None
                rows.append((values, [report_stats.Part(events, share=share)]))
    else:
        group_by = ["segment_id"]
        for segment in data.records("segment"):
            joined = data.members["segment"].get(segment.id, {}).values()
            rows.append(({"segment_id": segment.id}, _Members(joined)))
    out = []
    for values, source in rows:
        if node is not None and not evaluate(node, lambda f, v=values: _as_list(v.get(f))):  # type: ignore[misc]
            continue
        groupings = {g: values.get(g) for g in group_by}
        out.append((groupings, source))
    return _merge_rows(out)


def _merge_rows(rows: list[tuple[dict[str, Any], Any]]) -> list[tuple[dict[str, Any], Any]]:
    """Rows of the same groupings as one (e.g. group_by without message ids): their parts together."""
    merged: dict[str, tuple[dict[str, Any], Any]] = {}
    for groupings, source in rows:
        key = repr(sorted(groupings.items(), key=lambda kv: kv[0]))
        if key not in merged:
            merged[key] = (groupings, source)
        elif isinstance(source, list):
            merged[key][1].extend(source)
    return [(g, source if isinstance(source, _Members) else report_stats.Row(source)) for g, source in merged.values()]


def _as_list(value: Any) -> list[Any]:
    return [value]


def _stat(kind: str, stat: str, source: Any, lo: datetime, hi: datetime) -> float | int:
    if kind == "segment":
        added = source.added(lo, hi)
        removed = added // 7
        if stat == "members_added":
            return added
        if stat == "members_removed":
            return removed
        if stat == "net_members_changed":
            return added - removed
        return source.total(hi) - source.total(hi) // 7
    figures = source.figures(micros(lo), micros(hi))
    if kind == "form":
        return report_stats.form_statistic(stat, figures)
    return report_stats.message_statistic(stat, figures)


# ---- metric aggregates ---------------------------------------------------------------------------
def metric_aggregate(data: AccountData, attrs: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    """Counts, sums and uniques of one metric's events per interval, optionally by dimensions."""
    metric_id = attrs["metric_id"]
    if metric_id not in data.store["metric"]:
        raise ApiError(
            400,
            "invalid",
            "Invalid input.",
            f"Metric {metric_id} was not found.",
            pointer="/data/attributes/metric_id",
        )
    conds = aggregate_conditions(attrs["filter"])
    tz = _zone(attrs.get("timezone") or "UTC")
    start, end = _aggregate_range(attrs["filter"], tz)
    others = [c for c in conds if c.field != "datetime"]
    interval = attrs.get("interval") or "day"
    lo_dt = datetime.fromtimestamp(start / SECOND, tz)
    hi_dt = datetime.fromtimestamp(end / SECOND, tz)
    buckets = _buckets(lo_dt, hi_dt, interval) if end > start else []
    edges = [micros(lo) for lo, _ in buckets]
    dims: list[str] = list(attrs.get("by") or [])
    measurements = attrs["measurements"]
    store = data.events
    query = EventQuery(min_t=start, max_t=end - 1, metric_ids=frozenset([metric_id]))
    table: dict[tuple[str, ...], dict[str, list[Any]]] = {}
    uniques: dict[tuple[str, ...], list[set[str]]] = {}
    need_props = bool(dims) or bool(others) or "sum_value" in measurements
    for t, idx in store.iter_keys(query):
        props: dict[str, Any] = {}
        if need_props:
            rec = data.event_pages.record(idx)
            props = rec.attrs["event_properties"] or {}
            if others and not all(_prop_test(c, props) for c in others):
                continue
        key = tuple(str(props.get(d, "")) for d in dims)
        row = table.get(key)
        if row is None:
            row = table[key] = {"count": [0] * len(buckets), "sum_value": [0.0] * len(buckets)}
            uniques[key] = [set() for _ in buckets]
        pos = _bucket_index(edges, t)
        row["count"][pos] += 1
        value = props.get("$value")
        if isinstance(value, (int, float)):
            row["sum_value"][pos] += float(value)
        uniques[key][pos].add(store.profile_of(idx))
    rows = []
    for key in sorted(table):
        measures: dict[str, Any] = {}
        for m in measurements:
            if m == "unique":
                measures[m] = [len(s) for s in uniques[key]]
            elif m == "sum_value":
                measures[m] = [round(v, 2) for v in table[key]["sum_value"]]
            else:
                measures[m] = table[key][m]
        rows.append({"dimensions": list(key), "measurements": measures})
    if not rows and not dims:
        rows.append({"dimensions": [], "measurements": {m: [0] * len(buckets) for m in measurements}})
    sort = attrs.get("sort")
    if sort:
        rows = _sort_rows(rows, sort, dims)
    offset = 0
    if attrs.get("page_cursor"):
        cursor = decode_cursor(attrs["page_cursor"]) or {}
        offset = int(cursor.get("o", 0))
    size = int(attrs.get("page_size") or 500)
    page = rows[offset : offset + size]
    next_cursor = encode_cursor({"o": offset + size}) if offset + size < len(rows) else None
    digest = hashlib.sha1(repr((metric_id, sorted(attrs.items(), key=lambda kv: kv[0]))).encode()).hexdigest()
    return {
        "data": {
            "type": "metric-aggregate",
            "id": digest[:20],
            "attributes": {"dates": [fmt(micros(lo)) for lo, _ in buckets], "data": page},
            "links": {"self": ctx.url()},
        },
        "links": {"self": ctx.url(), "next": next_cursor, "prev": None},
    }


_RANGE_RE = re.compile(r"(greater-or-equal|less-than)\(\s*datetime\s*,\s*([^)]+?)\s*\)")


def _aggregate_range(filters: list[str], tz: Any) -> tuple[int, int]:
    """[start, end) in epoch micros; datetimes without an offset are in the request's ``timezone``."""
    starts: list[int] = []
    ends: list[int] = []
    for text in filters:
        for op, raw in _RANGE_RE.findall(text):
            value = datetime.fromisoformat(raw.replace(" ", "T", 1) if "T" not in raw else raw)
            if value.tzinfo is None:
                value = value.replace(tzinfo=tz)
            (starts if op == "greater-or-equal" else ends).append(micros(value))
    return max(starts), min(ends)


def _prop_test(cond: Condition, props: dict[str, Any]) -> bool:
    return evaluate(cond, lambda name: path_values(props, name) if name in props or "." in name else [])


def _sort_rows(rows: list[dict[str, Any]], sort: str, dims: list[str]) -> list[dict[str, Any]]:
    desc = sort.startswith("-")
    name = sort.lstrip("-")
    if name in dims:
        pos = dims.index(name)
        return sorted(rows, key=lambda r: r["dimensions"][pos], reverse=desc)
    return sorted(rows, key=lambda r: sum(r["measurements"].get(name, [0])), reverse=desc)


def _bucket_index(edges: list[int], t: int) -> int:
    lo, hi = 0, len(edges) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if edges[mid] <= t:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _zone(name: str) -> Any:
    try:
        import zoneinfo

        return zoneinfo.ZoneInfo(name)
    except Exception:
        return timezone.utc
