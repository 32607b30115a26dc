"""One sink per Klaviyo object the target writes."""

from __future__ import annotations

from tap_klaviyo.sinks.base import KlaviyoSink
from tap_klaviyo.sinks.event import EventSink
from tap_klaviyo.sinks.list import ListSink
from tap_klaviyo.sinks.list_member import ListMemberSink
from tap_klaviyo.sinks.profile import ProfileSink
from tap_klaviyo.sinks.subscription import SubscriptionSink

SINK_TYPES: dict[str, type[KlaviyoSink]] = {
    sink.name: sink for sink in (ProfileSink, EventSink, ListSink, ListMemberSink, SubscriptionSink)
}
