"""One sink per Klaviyo object the target writes."""

from __future__ import annotations

from target_klaviyo.sinks.base import KlaviyoSink
from target_klaviyo.sinks.event import EventSink
from target_klaviyo.sinks.list import ListSink
from target_klaviyo.sinks.list_member import ListMemberSink
from target_klaviyo.sinks.profile import ProfileSink
from target_klaviyo.sinks.subscription import SubscriptionSink

SINK_TYPES: dict[str, type[KlaviyoSink]] = {
    sink.name: sink for sink in (ProfileSink, EventSink, ListSink, ListMemberSink, SubscriptionSink)
}
