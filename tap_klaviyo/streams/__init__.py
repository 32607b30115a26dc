"""Every stream of the tap, grouped by Klaviyo domain."""

from __future__ import annotations

from tap_klaviyo.client import KlaviyoStream
from tap_klaviyo.streams.campaigns import CampaignMessageStream, CampaignStream
from tap_klaviyo.streams.content import AccountStream, TemplateStream
from tap_klaviyo.streams.events import EventStream, MetricStream
from tap_klaviyo.streams.flows import FlowActionStream, FlowMessageStream, FlowStream
from tap_klaviyo.streams.profiles import (
    ListStream,
    ProfileListStream,
    ProfileSegmentStream,
    ProfileStream,
    SegmentStream,
)

STREAM_TYPES: list[type[KlaviyoStream]] = [
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
