"""Campaigns on every channel, archived or not, with their messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any, ClassVar

from singer_sdk.helpers.types import Context
from typing_extensions import override

from klaviyo_core import spec
from klaviyo_core.documents import objects_of
from klaviyo_core.timestamps import normalize_timestamp
from tap_klaviyo.reading.children import DerivedStream, SideloadedStream
from tap_klaviyo.reading.stream import KlaviyoStream

#: Klaviyo lists campaigns one channel at a time; the spec names the channels its filter takes.
CHANNELS = spec.filter_values("/api/campaigns", "messages.channel") or ("email", "sms", "mobile_push")
#: Channels whose messages have no template.
TEMPLATELESS_CHANNELS = frozenset({"sms", "mobile_push"})


class CampaignStream(KlaviyoStream):
    """Klaviyo answers one channel per request: each (channel, archived) pair is a sorted partition
    with its own bookmark, so state is saved only where it is safe."""

    name = "campaign"
    path = "/api/campaigns"
    replication_key = "updated_at"
    #: Klaviyo answers per channel; the record says which (`email`, `sms`, `mobile_push`).
    context_columns = ("channel",)
    sideloads = {"campaign-messages": "campaign_messages"}
    partitions = [{"channel": c, "archived": a} for c in CHANNELS for a in (False, True)]

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
    state_partitioning_keys = ()
    context_columns = ("campaign_id",)

    @override
    def post_process(self, row: dict[str, Any], context: Context | None = None) -> dict[str, Any] | None:
        """A message on a channel the spec does not list yet: its campaign is read on no partition."""
        definition = row.get("definition")
        channel = definition.get("channel") if isinstance(definition, dict) else None
        if isinstance(channel, str) and channel not in CHANNELS and channel not in self.unknown_channels:
            self.unknown_channels.add(channel)
            self.logger.warning(
                "%s: Klaviyo sent a message on the channel %r, which revision %s does not list (%s): campaigns "
                "sent only on it are not read until the tap knows the channel",
                self.name,
                channel,
                spec.SPEC_REVISION,
                ", ".join(CHANNELS),
            )
        return super().post_process(row, context)

    @cached_property
    def unknown_channels(self) -> set[str]:
        return set()

    @override
    def get_child_context(self, record: dict[str, Any], context: Mapping[str, Any] | None) -> dict[str, Any]:
        definition = record.get("definition")
        return {
            "campaign_message_id": record["id"],
            "campaign_id": record.get("campaign_id"),
            "template_id": record.get("template_id"),
            "channel": definition.get("channel") if isinstance(definition, dict) else None,
        }


class CampaignMessageTemplateStream(KlaviyoStream):
    """The template a campaign message sends (Klaviyo's copy for that message, not a library template)."""

    name = "campaign_message_template"
    path = "/api/campaign-messages/{campaign_message_id}/template"
    primary_keys = ("campaign_message_id",)
    parent_stream_type = CampaignMessageStream
    state_partitioning_keys = ()
    context_columns = ("campaign_message_id",)
    skip_not_found = True

    @override
    def wants(self, context: Mapping[str, Any]) -> bool:
        # SMS and push messages have no template: asking would only earn a 404. A message whose template
        # relationship did not come (or came partial) is asked all the same unless its channel has none.
        return bool(context.get("template_id")) or context.get("channel") not in TEMPLATELESS_CHANNELS

    @override
    def get_records(self, context: Mapping[str, Any] | None) -> Iterable[dict[str, Any]]:
        if context and self.wants(context):
            yield from super().get_records(context)


class CampaignMessageSendTimeStream(DerivedStream):
    name = "campaign_message_send_time"
    path = "/api/campaigns/{campaign_id}/campaign-messages"
    parent_stream_type = CampaignMessageStream
    parent_key = "campaign_message_id"
    primary_keys = ("campaign_message_id", "datetime")
    columns = {
        "campaign_message_id": {"type": ["string"]},
        "datetime": {"type": ["string", "null"], "format": "date-time"},  # null: unreadable (a warning says so)
        "is_local": {"type": ["boolean", "null"]},
    }

    @override
    def derive(self, parent: dict[str, Any]) -> list[dict[str, Any]]:
        rows = []
        for item in objects_of(parent.get("send_times")):
            sent = item.get("datetime")
            if sent:
                at = normalize_timestamp(sent)
                if at is None:
                    self.notes.unreadable_timestamp("datetime", sent)
                rows.append({"campaign_message_id": parent["id"], "datetime": at, "is_local": item.get("is_local")})
        return rows


class CampaignRecipientEstimationStream(KlaviyoStream):
    name = "campaign_recipient_estimation"
    path = "/api/campaign-recipient-estimations/{campaign_id}"
    parent_stream_type = CampaignStream
    state_partitioning_keys = ()
    context_columns = ("campaign_id",)
    skip_not_found = True


class AudienceStream(DerivedStream):
    """One row per audience (list or segment id) a campaign sends to or excludes."""

    audience_key: ClassVar[str]
    path = "/api/campaigns"
    parent_stream_type = CampaignStream
    parent_key = "campaign_id"
    primary_keys = ("campaign_id", "audience_id")
    columns = {"campaign_id": {"type": ["string"]}, "audience_id": {"type": ["string"]}}

    @override
    def derive(self, parent: dict[str, Any]) -> list[dict[str, Any]]:
        audiences = parent.get("audiences")
        ids = audiences.get(self.audience_key) if isinstance(audiences, dict) else None
        ids = [i for i in ids if i is not None] if isinstance(ids, list) else []
        return [{"campaign_id": parent["id"], "audience_id": str(i)} for i in dict.fromkeys(ids)]


class AudienceIncludedStream(AudienceStream):
    name = "audience_included"
    audience_key = "included"


class AudienceExcludedStream(AudienceStream):
    name = "audience_excluded"
    audience_key = "excluded"


class CampaignUtmParamStream(DerivedStream):
    """The campaign's custom UTM parameters (`tracking_options.custom_tracking_params`)."""

    name = "campaign_utm_param"
    path = "/api/campaigns"
    parent_stream_type = CampaignStream
    parent_key = "campaign_id"
    primary_keys = ("campaign_id", "name")
    columns = {
        "campaign_id": {"type": ["string"]},
        "name": {"type": ["string"]},
        "type": {"type": ["string", "null"]},
        "value": {"type": ["string", "null"]},
    }

    @override
    def derive(self, parent: dict[str, Any]) -> list[dict[str, Any]]:
        options = parent.get("tracking_options")
        params = options.get("custom_tracking_params") if isinstance(options, dict) else None
        rows = {}
        for item in objects_of(params):
            if isinstance(item, dict) and item.get("name"):
                value = item.get("value")
                rows[item["name"]] = {
                    "campaign_id": parent["id"],
                    "name": str(item["name"]),
                    "type": item.get("type"),
                    "value": None if value is None else str(value),
                }
        return list(rows.values())
