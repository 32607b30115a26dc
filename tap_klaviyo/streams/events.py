"""Events and the metrics they belong to."""

from __future__ import annotations

from tap_klaviyo.client import KlaviyoStream


class MetricStream(KlaviyoStream):
    """Every metric, always in full: events refer to them by id, whatever the start_date."""

    name = "metric"
    path = "/api/metrics"


class EventStream(KlaviyoStream):
    name = "event"
    path = "/api/events"
    replication_key = "datetime"
