"""Campaigns on every channel, archived or not, with their messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from typing_extensions import override

from tap_klaviyo.client import KlaviyoStream, SideloadedStream

CHANNELS = ("email", "sms", "mobile_push")


class CampaignStream(KlaviyoStream):
    """Klaviyo answers one channel per request: each (channel, archived) pair is a sorted partition
    with its own bookmark, so state is saved only where it is safe."""

    name = "campaign"
    path = "/api/campaigns"
    replication_key = "updated_at"
    sideloads = {"campaign-messages": "campaign_messages"}
    partitions = [{"channel": c, "archived": a} for c in CHANNELS for a in (False, True)]  # noqa: RUF012

    @override
    def static_filters(self, context: Mapping[str, Any] | None) -> list[str]:
        assert context is not None
        archived = "true" if context.get("archived") else "false"
        return [f"equals(messages.channel,'{context['channel']}')", f"equals(archived,{archived})"]

    @override
    def get_child_context(self, record: dict[str, Any], context: Mapping[str, Any] | None) -> dict[str, Any]:
        return {"campaign_id": record["id"]}


class CampaignMessageStream(SideloadedStream):
    name = "campaign_messages"
    path = "/api/campaigns/{campaign_id}/campaign-messages"
    parent_stream_type = CampaignStream
    parent_key = "campaign_id"
    state_partitioning_keys = ()  # type: ignore[assignment]
    context_columns = ("campaign_id",)
