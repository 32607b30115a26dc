"""Klaviyo's Reporting API (campaign and flow values, flow/segment/form series) and metric aggregates.

Reports cost 1 request a second, 2 a minute and 225 a day per endpoint for the whole account (every app on
it), so each request is planned:

- values reports: one request a run (plus pages), the totals of a trailing window (at most a year) per
  grouping; each run upserts them. Per-day values (setting `report_values_per_day`) are one request a day.
- series reports: daily series, 60 days a request (Klaviyo's cap for `interval: daily`).

Dated reads (series, per-day values) make at most `report_requests_per_run` requests for days not read yet
and continue on the next run; rows come out in date order and the bookmark also moves when a slice is
complete, so resuming from any STATE re-reads at most the lookback.

Each stream is four small pieces: `slices` (the requests of a run), `request_body` (+ `request_params`) for
one slice and page, `parse_rows` (a response to rows) and the one loop in `ReportStream.request_records`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from typing_extensions import override

from klaviyo_core import spec
from klaviyo_core.timestamps import normalize_timestamp, parse_utc, utc_iso
from tap_klaviyo.reading.children import Listing
from tap_klaviyo.reading.pagination import ApiPage
from tap_klaviyo.reading.settings import parse_date_setting
from tap_klaviyo.reading.stream import KlaviyoStream

DAY = timedelta(days=1)
CONVERSION_METRIC_NAME = "Placed Order"
#: Klaviyo: "If daily is used, the timeframe cannot be longer than 60 days".
DAILY_SERIES_MAX_DAYS = 60
#: Klaviyo: a report's timeframe is at most one year.
MAX_TIMEFRAME_DAYS = 365
#: Klaviyo: segment report data is unavailable before June 1st, 2023.
SEGMENT_DATA_START = datetime(2023, 6, 1, tzinfo=timezone.utc)
DEFAULT_HISTORY_DAYS = 60
DEFAULT_REQUESTS_PER_RUN = 2

#: One request's worth of a report: timeframe `start`/`end` (datetimes), optional `interval`.
Slice = dict[str, Any]


def _midnight(value: datetime) -> datetime:
    value = value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def _cursor(token: Any | None) -> str | None:
    """The page cursor in the paginator's token (links.next of the last page)."""
    return next_cursor({"links": {"next": token.geturl()}}) if token is not None else None


def next_cursor(doc: Mapping[str, Any]) -> str | None:
    """Klaviyo hands the next page's cursor back in links.next (a URL carrying it, or the bare cursor)."""
    following = (doc.get("links") or {}).get("next")
    if not following:
        return None
    query = parse_qs(urlsplit(str(following)).query)
    for key in ("page_cursor", "page[cursor]"):
        if query.get(key):
            return query[key][0]
    return str(following)


class ReportStream(KlaviyoStream):
    """A POST query endpoint read as a list of slices, each one request plus its pages."""

    #: The slice being requested (main thread only: reports are never fetched ahead).
    current_slice: Slice

    method = "post"
    stop_when_exhausted = True
    full_read_setting = None  # a report is read a slice at a time, within a request budget: never in full
    report_type: ClassVar[str]
    group_by: ClassVar[tuple[str, ...]]
    needs_conversion_metric: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A report's JSON:API type is its path's, singular."""
        super().__init_subclass__(**kwargs)
        if "path" in cls.__dict__ and "report_type" not in cls.__dict__:
            cls.report_type = cls.__dict__["path"].removeprefix("/api/").removesuffix("s")

    @cached_property
    def statistics(self) -> list[str]:
        return spec.request_enum(self.path, "statistics")

    @property
    def group_by_accepted(self) -> bool:
        try:
            spec.request_attribute(self.path, "group_by")
        except KeyError:
            return False
        return True

    @property
    def conversion_metric_id(self) -> str | None:
        """The configured metric, else the account's "Placed Order", looked up once a run for all reports."""
        configured = self.config.get("report_conversion_metric_id")
        if configured:
            return str(configured)
        found: str | None = self.run.once("conversion metric", self.find_conversion_metric)
        return found

    def find_conversion_metric(self) -> str | None:
        for metric in Listing(self.klaviyo_tap, "/api/metrics", {"fields[metric]": "name"}).all():
            if metric.get("name") == CONVERSION_METRIC_NAME:
                return str(metric["id"])
        return None

    # -- the run's plan --------------------------------------------------------------------------------

    @property
    def run_end(self) -> datetime:
        """Timeframes end at the run's start (never in the future), or at end_date when earlier."""
        end = self.run.started.replace(microsecond=0)
        if self.run.end_date is not None:
            end = min(end, self.run.end_date)
        return end

    def first_day(self, context: Mapping[str, Any] | None) -> datetime:
        """The bookmark's day less the lookback, else start_date's day, else report_history_days ago."""
        bookmark = self.query.starting_timestamp(context)
        if bookmark is not None and self.query.has_bookmark(context):
            lookback = float(self.config.get("report_lookback_days") or 0)
            return _midnight(bookmark) - timedelta(days=lookback)
        if bookmark is not None:
            return _midnight(bookmark)
        history = float(self.config.get("report_history_days", DEFAULT_HISTORY_DAYS))
        return _midnight(self.run_end) - timedelta(days=history)

    def slices(self, context: Mapping[str, Any] | None) -> list[Slice]:
        """The requests of this run, in date order."""
        raise NotImplementedError

    def request_body(self, slice_: Slice, cursor: str | None) -> dict[str, Any]:
        """The POST body of one slice (the page cursor of reports travels in the query)."""
        attributes: dict[str, Any] = {
            "statistics": self.statistics,
            "timeframe": {"start": utc_iso(slice_["start"]), "end": utc_iso(slice_["end"])},
        }
        if self.group_by_accepted:
            attributes["group_by"] = list(self.group_by)
        if self.needs_conversion_metric:
            attributes["conversion_metric_id"] = self.conversion_metric_id
        if slice_.get("interval"):
            attributes["interval"] = slice_["interval"]
        return {"data": {"type": self.report_type, "attributes": attributes}}

    def request_params(self, cursor: str | None) -> dict[str, str]:
        return {"page_cursor": cursor} if cursor else {}

    def parse_rows(self, doc: Mapping[str, Any], slice_: Slice) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def slice_done(self, context: Mapping[str, Any] | None, slice_: Slice) -> None:
        """Every row of the slice was emitted (dated reports move their bookmark here)."""

    def groupings(self, result: Mapping[str, Any]) -> dict[str, str | None]:
        found = result.get("groupings")
        if not isinstance(found, Mapping):
            found = {}
        return {g: _text(found.get(g)) for g in self.group_by}

    # -- the loop (the only place that sends) ----------------------------------------------------------

    @override
    def request_pages(self, context: Mapping[str, Any] | None) -> Generator[ApiPage, None, None]:
        if self.denied:
            return
        with self.tolerance.tolerated_errors(context):
            if self.needs_conversion_metric and not self.conversion_metric_id:
                self.logger.warning(
                    "%s skipped: the account has no %r metric; set report_conversion_metric_id",
                    self.name,
                    CONVERSION_METRIC_NAME,
                )
                return
            for slice_ in self.slices(context):
                # The SDK's request path: one POST and its pages (prepare_request_payload, the paginator).
                self.current_slice = slice_
                yield from super().request_pages(context)
                self.slice_done(context, slice_)

    @property
    @override
    def concurrency(self) -> int:
        """Reports are read one slice after another on the main thread (their limit is 1 a second anyway)."""
        return 1

    @override
    def get_url_params(self, context: Mapping[str, Any] | None, next_page_token: Any | None) -> dict[str, Any]:
        return self.request_params(_cursor(next_page_token))

    @override
    def prepare_request_payload(self, context: Mapping[str, Any] | None, next_page_token: Any | None) -> Any:
        return self.request_body(self.current_slice, _cursor(next_page_token))

    @override
    def records_of(self, doc: Any) -> list[dict[str, Any]]:
        return list(self.parse_rows(doc, self.current_slice))

    @override
    def post_process(self, row: dict[str, Any], context: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        return self.shape.complete(row)


class DatedReportStream(ReportStream):
    """Rows per (day, grouping), read oldest day first, at most `report_requests_per_run` new requests."""

    replication_key = "date"
    #: Days one request covers.
    slice_days: ClassVar[int] = 1
    interval: ClassVar[str | None] = None
    #: Klaviyo has no data before this (None: no such limit).
    data_start: ClassVar[datetime | None] = None

    @property
    @override
    def is_sorted(self) -> bool:
        """Rows come out in date order, so the bookmark can move with every row (resumable)."""
        return True

    @property
    def requests_per_run(self) -> int:
        return max(1, int(self.config.get("report_requests_per_run") or DEFAULT_REQUESTS_PER_RUN))

    @override
    def slices(self, context: Mapping[str, Any] | None) -> list[Slice]:
        """Chunks of `slice_days` from the first day to the run's end; those re-reading days already
        bookmarked (the lookback) are free, then at most `report_requests_per_run` more."""
        start, end = self.first_day(context), self.run_end
        if self.data_start is not None:
            start = max(start, self.data_start)
        bookmark = self.query.starting_timestamp(context) if self.query.has_bookmark(context) else None
        fresh_from = _midnight(bookmark) + DAY if bookmark is not None else start
        out: list[Slice] = []
        budget = self.requests_per_run
        while start < end:
            stop = min(start + timedelta(days=self.slice_days), end)
            if stop > fresh_from:
                if budget == 0:
                    self.logger.warning(
                        "%s: %d request(s) this run (report_requests_per_run); continues from %s on the next run",
                        self.name,
                        self.requests_per_run,
                        start.date().isoformat(),
                    )
                    break
                budget -= 1
            out.append({"start": start, "end": stop, **({"interval": self.interval} if self.interval else {})})
            start = stop
        return out

    @override
    def slice_done(self, context: Mapping[str, Any] | None, slice_: Slice) -> None:
        """The slice's last day is complete: the bookmark may move there even if it had no rows, so a
        resumed run does not read it again beyond the lookback."""
        last_day = utc_iso(_midnight(slice_["end"] - timedelta(microseconds=1)))
        state = self.get_context_state(dict(context) if context else None)
        current = state.get("replication_key_value")
        reached = parse_utc(current)
        if reached is None or utc_iso(reached) < last_day:
            state["replication_key"] = self.replication_key
            state["replication_key_value"] = last_day


class SeriesReportStream(DatedReportStream):
    """Daily series: up to 60 days a request, rows in date order (every grouping of a day, then the next)."""

    primary_keys: ClassVar[tuple[str, ...]] = ()
    slice_days = DAILY_SERIES_MAX_DAYS
    interval = "daily"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "group_by" in cls.__dict__ and "primary_keys" not in cls.__dict__:
            cls.primary_keys = ("date", *cls.group_by)

    @classmethod
    @override
    def build_schema(cls) -> dict[str, Any]:
        props: dict[str, Any] = {"date": {"type": ["string", "null"], "format": "date-time"}}
        props.update({g: {"type": ["string", "null"]} for g in cls.group_by})  # Klaviyo may send a null grouping
        statistics = spec.request_enum(cls.path, "statistics")  # type: ignore[misc]
        props.update({s: {"type": ["number", "null"]} for s in statistics})
        return {"type": "object", "properties": props}

    def report_day(self, stamp: Any) -> str | None:
        """A series' day in UTC; null (with the stream's one warning) when Klaviyo's date cannot be read."""
        parsed = parse_utc(stamp)
        if parsed is None:
            self.notes.unreadable_timestamp("date", stamp)
            return None
        return utc_iso(_midnight(parsed))

    @override
    def parse_rows(self, doc: Mapping[str, Any], slice_: Slice) -> Iterator[dict[str, Any]]:
        attributes = (doc.get("data") or {}).get("attributes") or {}
        stamps = attributes.get("date_times") or []
        dates = [self.report_day(d) for d in stamps]
        results = [
            (self.groupings(r), r.get("statistics") or {}) for r in attributes.get("results") or [] if hasattr(r, "get")
        ]
        for index, date in enumerate(dates):
            for groupings, series in results:
                stats = {k: (v[index] if isinstance(v, list) and index < len(v) else None) for k, v in series.items()}
                yield {"date": date, **groupings, **stats}


class ValuesReportStream(DatedReportStream):
    """Totals per grouping over a trailing window (at most a year), one request a run: each run upserts the
    latest totals, keyed by the grouping. Named in `report_values_per_day`: one row per (day, grouping)
    instead, one request a day, incremental on `date`."""

    def __init__(self, tap: Any, **kwargs: Any) -> None:
        per_day = self.name in (tap.config.get("report_values_per_day") or [])
        # Chosen by the settings before the SDK builds the catalog entry from them.
        self.replication_key = "date" if per_day else None  # type: ignore[assignment]
        self.primary_keys = ("date", *self.group_by) if per_day else self.group_by  # type: ignore[misc]
        super().__init__(tap, **kwargs)

    @property
    def per_day(self) -> bool:
        return self.replication_key == "date"

    @property
    @override
    def is_sorted(self) -> bool:
        return self.per_day

    @classmethod
    @override
    def build_schema(cls) -> dict[str, Any]:
        timestamp = {"type": ["string", "null"], "format": "date-time"}
        props: dict[str, Any] = {"date": dict(timestamp)}
        props.update({g: {"type": ["string", "null"]} for g in cls.group_by})  # Klaviyo may send a null grouping
        props.update({"timeframe_start": dict(timestamp), "timeframe_end": dict(timestamp)})
        statistics = spec.request_enum(cls.path, "statistics")  # type: ignore[misc]
        props.update({s: {"type": ["number", "null"]} for s in statistics})
        return {"type": "object", "properties": props}

    @override
    def slices(self, context: Mapping[str, Any] | None) -> list[Slice]:
        if self.per_day:
            return super().slices(context)
        end = self.run_end
        days = min(float(self.config.get("report_window_days") or MAX_TIMEFRAME_DAYS), MAX_TIMEFRAME_DAYS)
        start = end - timedelta(days=days)
        configured_start = parse_date_setting(self.config, "start_date")
        if configured_start is not None and start < configured_start < end:
            start = configured_start
        return [{"start": start, "end": end}]

    @override
    def slice_done(self, context: Mapping[str, Any] | None, slice_: Slice) -> None:
        if self.per_day:
            super().slice_done(context, slice_)

    @override
    def parse_rows(self, doc: Mapping[str, Any], slice_: Slice) -> Iterator[dict[str, Any]]:
        attributes = (doc.get("data") or {}).get("attributes") or {}
        frame = {"timeframe_start": utc_iso(slice_["start"]), "timeframe_end": utc_iso(slice_["end"])}
        date = {"date": utc_iso(slice_["start"])} if self.per_day else {}
        for result in attributes.get("results") or []:
            yield {**date, **self.groupings(result), **frame, **(result.get("statistics") or {})}


class CampaignValuesReportStream(ValuesReportStream):
    name = "campaign_values_report"
    path = "/api/campaign-values-reports"
    group_by = ("campaign_id", "campaign_message_id", "send_channel")


class FlowValuesReportStream(ValuesReportStream):
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
    data_start = SEGMENT_DATA_START


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
    replication_key = "date"
    group_by = ()
    needs_conversion_metric = False
    stop_when_exhausted = False

    @classmethod
    @override
    def build_schema(cls) -> dict[str, Any]:
        props: dict[str, Any] = {
            "query_name": {"type": ["string"]},
            "date": {"type": ["string", "null"], "format": "date-time"},  # null: a date Klaviyo sent unreadable
            "dimensions_key": {"type": ["string"]},
            "dimensions": {"type": ["object", "null"], "additionalProperties": True},
        }
        props.update({m: {"type": ["number", "null"]} for m in spec.request_enum(cls.path, "measurements")})
        return {"type": "object", "properties": props}

    @property
    @override
    def is_sorted(self) -> bool:
        return False  # rows come grouped by dimension, then by date: the bookmark moves at the end

    @property
    def queries(self) -> dict[str, dict[str, Any]]:
        return {str(q["name"]): q for q in self.config.get("metric_aggregate_queries") or []}

    @cached_property
    @override
    def partitions(self) -> list[dict[str, Any]]:
        return [{"query_name": name} for name in self.queries]

    @override
    def slices(self, context: Mapping[str, Any] | None) -> list[Slice]:
        """One request per query (plus pages); the state's range unless the query's filter has one."""
        if not context:
            return []
        name = str(context["query_name"])
        query = self.queries[name]
        filters = [str(f) for f in query.get("filter") or []]
        if not any("(datetime," in f for f in filters):
            start, end = self.first_day(context), self.run_end
            filters += [f"greater-or-equal(datetime,{utc_iso(start)})", f"less-than(datetime,{utc_iso(end)})"]
        return [{"query_name": name, "filter": filters}]

    @override
    def request_body(self, slice_: Slice, cursor: str | None) -> dict[str, Any]:
        query = self.queries[slice_["query_name"]]
        attributes = {k: v for k, v in query.items() if k != "name"}
        attributes["filter"] = slice_["filter"]
        if cursor:
            attributes["page_cursor"] = cursor
        return {"data": {"type": self.report_type, "attributes": attributes}}

    @override
    def request_params(self, cursor: str | None) -> dict[str, str]:
        return {}  # the cursor travels in the body here

    def aggregate_day(self, stamp: Any) -> str | None:
        normalized = normalize_timestamp(stamp)
        if normalized is None:
            self.notes.unreadable_timestamp("date", stamp)
        return normalized

    @override
    def parse_rows(self, doc: Mapping[str, Any], slice_: Slice) -> Iterator[dict[str, Any]]:
        name = str(slice_["query_name"])
        by = self.queries[name].get("by") or []
        attributes = (doc.get("data") or {}).get("attributes") or {}
        dates = [self.aggregate_day(d) for d in attributes.get("dates") or []]
        for group in attributes.get("data") or []:
            values = [_text(v) for v in group.get("dimensions") or []]
            dimensions = dict(zip(by, values, strict=False))
            for index, date in enumerate(dates):
                row: dict[str, Any] = {
                    "query_name": name,
                    "date": date,
                    # Never empty: a key column that is "" reads back as NULL in CSV-based loaders (target-duckdb).
                    "dimensions_key": "|".join(v or "" for v in values) or "(none)",
                    "dimensions": dimensions,
                }
                for measure, series in (group.get("measurements") or {}).items():
                    row[measure] = series[index] if isinstance(series, list) and index < len(series) else None
                yield row


def _text(value: Any) -> str | None:
    """A grouping or dimension as text; Klaviyo's null stays null (never the string "None")."""
    return None if value is None else str(value)
