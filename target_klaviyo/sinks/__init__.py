"""One sink per Klaviyo object the target writes."""

from __future__ import annotations

from target_klaviyo.sinks.base import KlaviyoSink
from target_klaviyo.sinks.campaign import CampaignMessagesSink, CampaignMessageTemplateSink, CampaignSink
from target_klaviyo.sinks.catalog import CatalogCategorySink, CatalogItemSink, CatalogVariantSink
from target_klaviyo.sinks.event import EventSink
from target_klaviyo.sinks.global_exclusion import GlobalExclusionSink
from target_klaviyo.sinks.image import ImageSink
from target_klaviyo.sinks.list import ListSink
from target_klaviyo.sinks.list_member import ListMemberSink
from target_klaviyo.sinks.profile import ProfileSink
from target_klaviyo.sinks.segment import MetricSink, SegmentSink
from target_klaviyo.sinks.subscription import SubscriptionSink
from target_klaviyo.sinks.template import TemplateSink

SINK_TYPES: dict[str, type[KlaviyoSink]] = {
    sink.name: sink
    for sink in (
        ProfileSink,
        EventSink,
        ListSink,
        ListMemberSink,
        SubscriptionSink,
        TemplateSink,
        ImageSink,
        GlobalExclusionSink,
        CatalogCategorySink,
        CatalogItemSink,
        CatalogVariantSink,
        SegmentSink,
        MetricSink,
        CampaignSink,
        CampaignMessagesSink,
        CampaignMessageTemplateSink,
    )
}
