"""Klaviyo's Reporting API (campaign and flow values, flow/segment/form series) and metric aggregates.

Reports cost 1 request a second, 2 a minute and 225 a day for the whole account: each request is planned.
Values reports are read one day per request so that every row is (day, grouping) and re-reading a day
(the lookback, for late attribution) replaces exactly the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import requests
from singer_sdk import RESTStream
from typing_extensions import override

from tap_klaviyo import spec
from tap_klaviyo.children import Listing
from tap_klaviyo.client import KlaviyoStream
from tap_klaviyo.records import normalize_timestamp, utc_iso

DAY = timedelta(days=1)
#: Context keys of one request: a report's time slice, an aggregate's query attributes.
SLICE = "slice"
QUERY = "query"
DIMENSION_VALUES = "dimension_values"
CONVERSION_METRIC_NAME = "Placed Order"


def _midnight(value: datetime) -> datetime:
    value = value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


class ReportStream(KlaviyoStream):
    """One POST per time slice; rows keyed by (date, grouping)."""

    method = "post"
    replication_key = "date"
    stop_when_exhausted = True
    report_type: ClassVar[str]
    group_by: ClassVar[tuple[str, ...]]
    #: Days one request covers: 1 for values reports, up to 60 for daily series.
    slice_days: ClassVar[int] = 1
    needs_conversion_metric: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Reports are keyed by (date, grouping), and their JSON:API type is their path's, singular."""
        super().__init_subclass__(**kwargs)
        if "group_by" in cls.__dict__ and "primary_keys" not in cls.__dict__:
            cls.primary_keys = ("date", *cls.group_by)
        if "path" in cls.__dict__ and "report_type" not in cls.__dict__:
            cls.report_type = cls.__dict__["path"].removeprefix("/api/").removesuffix("s")

    @classmethod
    @override
    def build_schema(cls) -> dict[str, Any]:
        props: dict[str, Any] = {"date": {"type": ["string"], "format": "date-time"}}
        props.update({g: {"type": ["string"]} for g in cls.group_by})
        statistics = spec.request_enum(cls.path, "statistics")  # type: ignore[misc]
        props.update({s: {"type": ["number", "null"]} for s in statistics})
        return {"type": "object", "properties": props}

    @property
    @override
    def is_sorted(self) -> bool:
        """Days are read in order, so the bookmark can move with every row (resumable)."""
        return True

    @cached_property
    def statistics(self) -> list[str]:
        return spec.request_enum(self.path, "statistics")

    def days(self, context: Mapping[str, Any] | None) -> tuple[datetime, datetime]:
        """From the bookmark less the lookback (else start_date, else report_history_days ago) to tomorrow."""
        today = _midnight(self.run.started)
        bookmark = self.starting_timestamp(context)
        history = today - timedelta(days=float(self.config.get("report_history_days", 30)))
        if bookmark is not None and self.has_bookmark(context):
            start = _midnight(bookmark) - timedelta(days=float(self.config.get("report_lookback_days") or 0))
        else:
            start = _midnight(bookmark) if bookmark is not None else history
        end = today + DAY
        if self.run.end_date is not None:
            end = min(end, _midnight(self.run.end_date))
        return start, end

    @cached_property
    def conversion_metric_id(self) -> str | None:
        configured = self.config.get("report_conversion_metric_id")
        if configured:
            return str(configured)
        for metric in Listing(self._tap, "/api/metrics", {"fields[metric]": "name"}).all():
            if metric.get("name") == CONVERSION_METRIC_NAME:
                return str(metric["id"])
        return None

    def body(self, start: datetime, end: datetime) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "statistics": self.statistics,
            "timeframe": {"start": utc_iso(start), "end": utc_iso(end)},
            "group_by": list(self.group_by),
        }
        if self.needs_conversion_metric:
            attributes["conversion_metric_id"] = self.conversion_metric_id
        if self.slice_days > 1:
            attributes["interval"] = "daily"
        if not self.group_by_accepted:
            attributes.pop("group_by")
        return {"data": {"type": self.report_type, "attributes": attributes}}

    @property
    def group_by_accepted(self) -> bool:
        try:
            spec.request_attribute(self.path, "group_by")
        except KeyError:
            return False
        return True

    @override
    def request_records(self, context: Mapping[str, Any] | None) -> Iterable[dict[str, Any]]:
        if self.denied:
            return
        with self.tolerated_errors(context):
            if self.needs_conversion_metric and not self.conversion_metric_id:
                self.logger.warning(
                    "%s skipped: the account has no %r metric; set report_conversion_metric_id",
                    self.name,
                    CONVERSION_METRIC_NAME,
                )
                return
            start, end = self.days(context)
            while start < end:
                stop = min(start + timedelta(days=self.slice_days), end)
                # The SDK's request path, one POST per slice; its body comes from prepare_request_payload.
                yield from super().request_records({**(context or {}), SLICE: (utc_iso(start), utc_iso(stop))})
                start = stop

    @override
    def get_url_params(self, context: Mapping[str, Any] | None, next_page_token: Any | None) -> dict[str, Any]:
        return {}

    @override
    def prepare_request_payload(self, context: Mapping[str, Any] | None, next_page_token: Any | None) -> Any:
        start, stop = (context or {})[SLICE]
        return self.body(datetime.fromisoformat(start), datetime.fromisoformat(stop))

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict[str, Any]]:
        body = json.loads(response.request.body or b"{}")
        start = body["data"]["attributes"]["timeframe"]["start"]
        return list(self.rows(self.document(response), datetime.fromisoformat(start)))

    def rows(self, doc: dict[str, Any], day: datetime) -> Iterator[dict[str, Any]]:
        attributes = (doc.get("data") or {}).get("attributes") or {}
        for result in attributes.get("results") or []:
            groupings = {g: str((result.get("groupings") or {}).get(g)) for g in self.group_by}
            yield {"date": utc_iso(day), **groupings, **(result.get("statistics") or {})}

    @override
    def post_process(self, row: dict[str, Any], context: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        return row


class SeriesReportStream(ReportStream):
    """Daily series: up to 60 days a request, one row per (day, grouping). Opt-in (`series_reports`):
    they spend the same 225-a-day report budget as the values reports."""

    slice_days = 60

    @override
    def request_records(self, context: Mapping[str, Any] | None) -> Iterable[dict[str, Any]]:
        if self.name in (self.config.get("series_reports") or []):
            yield from super().request_records(context)

    @override
    def rows(self, doc: dict[str, Any], day: datetime) -> Iterator[dict[str, Any]]:
        attributes = (doc.get("data") or {}).get("attributes") or {}
        dates = [normalize_timestamp(d) for d in attributes.get("date_times") or []]
        for result in attributes.get("results") or []:
            groupings = {g: str((result.get("groupings") or {}).get(g)) for g in self.group_by}
            series = result.get("statistics") or {}
            for index, date in enumerate(dates):
                stats = {k: (v[index] if isinstance(v, list) and index < len(v) else None) for k, v in series.items()}
                yield {"date": utc_iso(_midnight(datetime.fromisoformat(date))), **groupings, **stats}


class CampaignValuesReportStream(ReportStream):
    name = "campaign_values_report"
    path = "/api/campaign-values-reports"
    group_by = ("campaign_id", "campaign_message_id", "send_channel")


class FlowValuesReportStream(ReportStream):
    name = "flow_values_report"
    path = "/api/flow-values-reports"
    group_by = ("flow_id", "flow_message_id", "send_channel")


class FlowSeriesReportStream(SeriesReportStream):
    name = "flow_series_report"
    path = "/api/flow-series-reports"
    group_by = ("flow_id", "flow_message_id", "send_channel")


class SegmentSeriesReportStream(SeriesReportStream):
    name = "segment_series_report"
    path = "/api/segment-series-reports"
    group_by = ("segment_id",)
    needs_conversion_metric = False


class FormSeriesReportStream(SeriesReportStream):
    name = "form_series_report"
    path = "/api/form-series-reports"
    group_by = ("form_id", "form_version_id")
    needs_conversion_metric = False


class MetricAggregateStream(ReportStream):
    """The user's own Query Metric Aggregates requests (setting `metric_aggregate_queries`), one row per
    (query, date, dimension values); the time range comes from the state when the query gives none."""

    name = "metric_aggregate"
    path = "/api/metric-aggregates"
    primary_keys = ("query_name", "date", "dimensions_key")
    group_by = ()
    needs_conversion_metric = False
    stop_when_exhausted = False

    @classmethod
    @override
    def build_schema(cls) -> dict[str, Any]:
        props: dict[str, Any] = {
            "query_name": {"type": ["string"]},
            "date": {"type": ["string"], "format": "date-time"},
            "dimensions_key": {"type": ["string"]},
            "dimensions": {"type": ["object", "null"], "additionalProperties": True},
        }
        props.update({m: {"type": ["number", "null"]} for m in spec.request_enum(cls.path, "measurements")})
        return {"type": "object", "properties": props}

    @property
    @override
    def is_sorted(self) -> bool:
        return False  # rows come grouped by dimension, then by date

    @property
    def queries(self) -> dict[str, dict[str, Any]]:
        return {str(q["name"]): q for q in self.config.get("metric_aggregate_queries") or []}

    @cached_property
    @override
    def partitions(self) -> list[dict[str, Any]]:
        return [{"query_name": name} for name in self.queries]

    @override
    def request_records(self, context: Mapping[str, Any] | None) -> Iterable[dict[str, Any]]:
        if not context:
            return
        query = self.queries[str(context["query_name"])]
        attributes = {k: v for k, v in query.items() if k != "name"}
        filters = [str(f) for f in attributes.get("filter") or []]
        if not any("(datetime," in f for f in filters):
            start, end = self.days(context)
            filters += [f"greater-or-equal(datetime,{utc_iso(start)})", f"less-than(datetime,{utc_iso(end)})"]
        attributes["filter"] = filters
        yield from RESTStream.request_records(self, {**context, QUERY: attributes})

    @override
    def prepare_request_payload(self, context: Mapping[str, Any] | None, next_page_token: Any | None) -> Any:
        attributes = dict((context or {})[QUERY])
        cursor = _next_cursor(next_page_token.geturl()) if next_page_token is not None else None
        if cursor:
            attributes["page_cursor"] = cursor
        return {"data": {"type": self.report_type, "attributes": attributes}}

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict[str, Any]]:
        return list(self.aggregate_rows(self.document(response)))

    @override
    def post_process(self, row: dict[str, Any], context: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The query's name and its dimensions by name (the response only has their values, in order)."""
        name = str((context or {})["query_name"])
        by = self.queries[name].get("by") or []
        values = row.pop(DIMENSION_VALUES)
        return {"query_name": name, **row, "dimensions": dict(zip(by, values, strict=False))}

    @staticmethod
    def aggregate_rows(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
        attributes = (doc.get("data") or {}).get("attributes") or {}
        dates = [normalize_timestamp(d) for d in attributes.get("dates") or []]
        for group in attributes.get("data") or []:
            values = [str(v) for v in group.get("dimensions") or []]
            for index, date in enumerate(dates):
                row: dict[str, Any] = {
                    "date": date,
                    # Never empty: a key column that is "" reads back as NULL in CSV-based loaders (target-duckdb).
                    "dimensions_key": "|".join(values) or "(none)",
                    DIMENSION_VALUES: values,
                }
                for measure, series in (group.get("measurements") or {}).items():
                    row[measure] = series[index] if isinstance(series, list) and index < len(series) else None
                yield row


def _next_cursor(following: str | None) -> str | None:
    """Klaviyo hands the next page's cursor back in links.next (a URL carrying it, or the bare cursor)."""
    if not following:
        return None
    query = parse_qs(urlsplit(str(following)).query)
    for key in ("page_cursor", "page[cursor]"):
        if query.get(key):
            return query[key][0]
    return str(following)
