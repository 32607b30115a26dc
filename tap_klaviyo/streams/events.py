"""Events and the metrics they belong to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from functools import cached_property
from typing import Any

from typing_extensions import override

from klaviyo_core.spec import record_schema
from tap_klaviyo.reading.children import SideloadedStream
from tap_klaviyo.reading.stream import KlaviyoStream


class MetricStream(KlaviyoStream):
    """Every metric, always in full: events refer to them by id, whatever the start_date."""

    name = "metric"
    path = "/api/metrics"


class EventStream(KlaviyoStream):
    """Events sorted by time, with the metric's name beside its id (names change; join on the id).

    Optional: only some metrics or profiles (Klaviyo's own `metric_id` / `profile_id` filters, each a
    partition with its own bookmark), chosen profile attributes inlined, and a lookback for late arrivals.
    """

    name = "event"
    path = "/api/events"
    replication_key = "datetime"
    full_read_setting = None  # events are never deleted
    windowed = True
    lean_documents = True
    sideloads = {"attributions": "event_attribution"}
    nested_packing = True  # children's contexts read only the id
    extra_properties = {
        "metric_name": {"type": ["string", "null"]},
        "profile": {
            "type": ["object", "null"],
            "properties": {
                k: v for k, v in record_schema("/api/profiles")["properties"].items() if k != "subscriptions"
            },
        },
    }

    @cached_property
    @override
    def partitions(self) -> list[dict[str, Any]] | None:
        metrics: list[str | None] = [str(m) for m in self.config.get("event_metric_ids") or []]
        profiles: list[str | None] = [str(p) for p in self.config.get("event_profile_ids") or []]
        if not metrics and not profiles:
            return None
        return [
            {k: v for k, v in (("metric_id", m), ("profile_id", p)) if v}
            for m in (metrics or [None])
            for p in (profiles or [None])
        ]

    @cached_property
    def profile_fields(self) -> list[str]:
        return [str(f) for f in self.config.get("event_profile_fields") or []]

    @property
    @override
    def includes(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("metric", "profile") if self.profile_fields else ("metric",)

    @override
    def sparse_fields(self) -> dict[str, str]:
        fields = {**super().sparse_fields(), "fields[metric]": "name"}
        if self.profile_fields:
            fields["fields[profile]"] = ",".join(self.profile_fields)
        return fields

    @override
    def static_filters(self, context: Mapping[str, Any] | None) -> list[str]:
        return [f'equals({key},"{context[key]}")' for key in ("metric_id", "profile_id") if context and key in context]

    @override
    def lookback(self, context: Mapping[str, Any] | None) -> timedelta:
        if self.query.has_bookmark(context):
            return timedelta(days=float(self.config.get("event_lookback_days") or 0))
        return timedelta(0)

    @override
    def get_child_context(self, record: dict[str, Any], context: Mapping[str, Any] | None) -> dict[str, Any]:
        return {"event_id": record["id"]}

    @override
    def generate_child_contexts(
        self, record: dict[str, Any], context: Mapping[str, Any] | None
    ) -> Iterable[dict[str, Any]]:
        """Only events with attributions: every child sync costs a SCHEMA message and metrics, and most
        events have none (asked for every event: no generator when there is nothing to yield)."""
        if self.syncs_children and self.fanout.holds(EventAttributionStream.name, str(record["id"])):
            return (self.get_child_context(record, context),)
        return ()

    @override
    def records_of(self, doc: Any) -> list[dict[str, Any]]:
        """Each event with its metric's name and, when asked, its profile's attributes (this page's
        `included`: any thread, nothing kept beyond the page)."""
        records = super().records_of(doc)
        metric_names: dict[str, str] = {}
        profiles: dict[str, dict[str, Any]] = {}
        for item in doc.get("included") or []:
            attributes = item.get("attributes") or {}
            if item.get("type") == "metric":
                metric_names[item.get("id")] = str(attributes.get("name") or "")
            elif item.get("type") == "profile":
                profiles[item.get("id")] = attributes
        inline = bool(self.profile_fields)
        for record in records:
            record["metric_name"] = metric_names.get(record.get("metric_id") or "")
            if inline:
                record["profile"] = profiles.get(record.get("profile_id") or "")
        return records


class EventAttributionStream(SideloadedStream):
    """Which message (campaign or flow) a conversion is credited to: the `attributions` Klaviyo includes with
    the event pages, asked for only when this stream is selected; no request or bookmark of its own."""

    name = "event_attribution"
    path = "/api/events"
    included_type = "attribution"
    parent_stream_type = EventStream
    parent_key = "event_id"
    context_columns = ("event_id",)
