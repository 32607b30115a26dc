"""Every stream of the tap, grouped by Klaviyo domain."""

from __future__ import annotations

from tap_klaviyo.reading.stream import KlaviyoStream
from tap_klaviyo.streams.campaigns import (
    AudienceExcludedStream,
    AudienceIncludedStream,
    CampaignMessageSendTimeStream,
    CampaignMessageStream,
    CampaignMessageTemplateStream,
    CampaignRecipientEstimationStream,
    CampaignStream,
    CampaignUtmParamStream,
)
from tap_klaviyo.streams.content import (
    AccountStream,
    CatalogCategoryStream,
    CatalogItemStream,
    CatalogVariantStream,
    CouponCodeStream,
    CouponStream,
    FormStream,
    FormVersionStream,
    ImageStream,
    PushTokenStream,
    ReviewStream,
    TagGroupStream,
    TagStream,
    TemplateStream,
    WebFeedStream,
)
from tap_klaviyo.streams.events import EventAttributionStream, EventStream, MetricStream
from tap_klaviyo.streams.flows import FlowActionStream, FlowMessageStream, FlowStream
from tap_klaviyo.streams.profiles import (
    GlobalExclusionStream,
    ListExclusionStream,
    ListStream,
    ProfileListStream,
    ProfileSegmentStream,
    ProfileStream,
    SegmentStream,
)
from tap_klaviyo.streams.reports import (
    CampaignValuesReportStream,
    FlowSeriesReportStream,
    FlowValuesReportStream,
    FormSeriesReportStream,
    MetricAggregateStream,
    SegmentSeriesReportStream,
)

#: Streams of the foundation: the core tables every user needs.
CORE_STREAMS: list[type[KlaviyoStream]] = [
    AccountStream,
    MetricStream,
    EventStream,
    ProfileStream,
    ListStream,
    SegmentStream,
    ProfileListStream,
    ProfileSegmentStream,
    FlowStream,
    FlowActionStream,
    FlowMessageStream,
    CampaignStream,
    CampaignMessageStream,
    TemplateStream,
]

#: Attribution, campaign detail, content, catalog, consent.
MORE_STREAMS: list[type[KlaviyoStream]] = [
    EventAttributionStream,
    CampaignMessageTemplateStream,
    CampaignMessageSendTimeStream,
    CampaignRecipientEstimationStream,
    AudienceIncludedStream,
    AudienceExcludedStream,
    CampaignUtmParamStream,
    ImageStream,
    TagStream,
    TagGroupStream,
    CouponStream,
    CouponCodeStream,
    CatalogItemStream,
    CatalogVariantStream,
    CatalogCategoryStream,
    FormStream,
    FormVersionStream,
    ReviewStream,
    WebFeedStream,
    PushTokenStream,
    GlobalExclusionStream,
    ListExclusionStream,
    CampaignValuesReportStream,
    FlowValuesReportStream,
    FlowSeriesReportStream,
    SegmentSeriesReportStream,
    FormSeriesReportStream,
    MetricAggregateStream,
]

STREAM_TYPES: list[type[KlaviyoStream]] = [*CORE_STREAMS, *MORE_STREAMS]
