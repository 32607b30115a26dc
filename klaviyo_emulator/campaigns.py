"""Campaign writes: drafts with their messages, message edits, template assignment, and the send job.

Only a draft can change: a campaign in any other status (sent, scheduled, sending, cancelled) refuses PATCH
and DELETE, and so do its messages. Assigning a template copies it into a new template that belongs to the
message and is not listed by GET /api/templates (Klaviyo: "a non-reusable version of the template").
POST /api/campaign-send-jobs is the only way out of draft; every call is kept in `send_job_calls` so a test
can prove a client never made one.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from .api import RequestContext, invalid, not_found
from .data import AccountData
from .objects import body_data, existing, now_stamp, path_id, resource_doc
from .profiles import now_micros
from .records import Rec, short_id, ulid
from .spec import Operation

DRAFT = "Draft"
CAMPAIGN_WRITES = {
    ("POST", "/api/campaigns"),
    ("PATCH", "/api/campaigns/{id}"),
    ("DELETE", "/api/campaigns/{id}"),
    ("PATCH", "/api/campaign-messages/{id}"),
    ("POST", "/api/campaign-message-assign-template"),
    ("POST", "/api/campaign-send-jobs"),
}
UPDATABLE = ("name", "audiences", "send_options", "tracking_options", "send_strategy")


@dataclass(frozen=True)
class SendJobCall:
    """One POST /api/campaign-send-jobs as received (the campaign id it named, the raw body)."""

    campaign_id: str
    body: str


class CampaignApi:
    """Campaign drafts and their messages in one `AccountData`."""

    def __init__(self, data: AccountData) -> None:
        self.data = data
        self.rng = random.Random(f"campaigns:{data.seed}")
        self.send_job_calls: list[SendJobCall] = []

    @staticmethod
    def serves(op: Operation) -> bool:
        return (op.method, op.template) in CAMPAIGN_WRITES

    def handle(self, op: Operation, ctx: RequestContext) -> tuple[int, dict[str, Any] | bytes]:
        with self.data.lock:
            if op.template == "/api/campaign-send-jobs":
                return self._send_job(op, ctx)
            data = body_data(ctx)
            if op.template == "/api/campaign-message-assign-template":
                return 200, resource_doc(op, ctx, self.data, self._assign(data))
            if op.template == "/api/campaign-messages/{id}":
                return 200, resource_doc(op, ctx, self.data, self._update_message(path_id(ctx, data), data))
            if op.method == "POST":
                rec = self._create(data.get("attributes") or {})
                return 201, resource_doc(op, ctx, self.data, rec, include=("campaign-messages",))
            campaign = self._draft(path_id(ctx, data if op.method == "PATCH" else None))
            if op.method == "DELETE":
                self.data.delete("campaign", campaign.id)
                return 204, b""
            attrs = data.get("attributes") or {}
            if "audiences" in attrs:
                self._check_audiences({**campaign.attrs["audiences"], **attrs["audiences"]})
            values = {**campaign.attrs, **{k: attrs[k] for k in UPDATABLE if k in attrs}}
            if "audiences" in attrs:
                values["audiences"] = {**campaign.attrs["audiences"], **attrs["audiences"]}
            values["updated_at"] = now_stamp()
            campaign.attrs = values
            self.data.generation += 1
            return 200, resource_doc(op, ctx, self.data, campaign, include=("campaign-messages",))

    # ---- drafts ----------------------------------------------------------------------------------
    def _draft(self, campaign_id: str) -> Rec:
        campaign = existing(self.data, "campaign", campaign_id)
        status = campaign.attrs.get("status")
        if status != DRAFT:
            raise invalid(
                f"Campaign {campaign_id} has status '{status}': only a draft campaign can be changed or deleted.",
                pointer="/data",
            )
        return campaign

    def _check_audiences(self, audiences: dict[str, Any]) -> None:
        groups = {**self.data.store.get("list", {}), **self.data.store.get("segment", {})}
        for side in ("included", "excluded"):
            for i, gid in enumerate(audiences.get(side) or []):
                if gid not in groups:
                    raise invalid(
                        f"The audience {gid} is neither a list nor a segment of this account.",
                        pointer=f"/data/attributes/audiences/{side}/{i}",
                    )

    def _create(self, attrs: dict[str, Any]) -> Rec:
        self._check_audiences(attrs["audiences"])
        messages = attrs["campaign-messages"]["data"]
        channels = {m["attributes"]["definition"]["channel"] for m in messages}
        if len(channels) != 1:
            raise invalid(
                "A campaign needs at least one message, all of one channel.",
                pointer="/data/attributes/campaign-messages",
            )
        channel = channels.pop()
        for i, message in enumerate(messages):
            self._check_image(message, f"/data/attributes/campaign-messages/data/{i}/relationships/image")
        now = now_micros()
        stamp = now_stamp()
        cid = ulid(now, self.rng)
        values = {
            "name": attrs["name"],
            "status": DRAFT,
            "archived": False,
            "audiences": {
                "included": list(attrs["audiences"]["included"]),
                "excluded": attrs["audiences"].get("excluded") or [],
            },
            "send_options": attrs.get("send_options") or {"use_smart_sending": True},
            "tracking_options": attrs.get("tracking_options") or self._default_tracking(channel),
            "send_strategy": attrs.get("send_strategy") or {"method": "immediate"},
            "created_at": stamp,
            "scheduled_at": None,
            "updated_at": stamp,
            "send_time": None,
        }
        campaign = Rec("campaign", cid, values, {"campaign-messages": [], "tags": []}, {"channel": channel})
        self.data.store.setdefault("campaign", {})[cid] = campaign
        for message in messages:
            mid = ulid(now, self.rng)
            image = ((message.get("relationships") or {}).get("image") or {}).get("data") or {}
            rec = Rec("campaign-message", mid, {}, {"campaign": cid, "template": None, "image": image.get("id")})
            self._set_definition(rec, message["attributes"]["definition"], stamp)
            rec.attrs["created_at"] = stamp
            self.data.store.setdefault("campaign-message", {})[mid] = rec
            campaign.rels["campaign-messages"].append(mid)
        self.data.generation += 1
        return campaign

    @staticmethod
    def _default_tracking(channel: str) -> dict[str, Any] | None:
        if channel == "mobile_push":
            return None
        return {"add_tracking_params": False, "is_tracking_clicks": True, "is_tracking_opens": channel == "email"}

    def _check_image(self, message: dict[str, Any], pointer: str) -> None:
        image = ((message.get("relationships") or {}).get("image") or {}).get("data") or {}
        if image.get("id") and image["id"] not in self.data.store.get("image", {}):
            raise invalid(f"The image {image['id']} does not exist.", pointer=pointer)

    @staticmethod
    def _set_definition(rec: Rec, definition: dict[str, Any], stamp: str) -> None:
        """A message's definition, and the older flat attributes (label, channel, content) some shapes show."""
        rec.attrs = {
            **rec.attrs,
            "definition": definition,
            "channel": definition.get("channel"),
            "label": definition.get("label"),
            "content": definition.get("content"),
            "render_options": definition.get("render_options"),
            "send_times": rec.attrs.get("send_times") or [],
            "updated_at": stamp,
        }

    # ---- messages --------------------------------------------------------------------------------
    def _message(self, message_id: str) -> Rec:
        message = existing(self.data, "campaign-message", message_id)
        self._draft(str(message.rels.get("campaign")))
        return message

    def _update_message(self, message_id: str, data: dict[str, Any]) -> Rec:
        message = self._message(message_id)
        self._check_image(data, "/data/relationships/image")
        definition = (data.get("attributes") or {}).get("definition")
        if definition is not None:
            current = message.attrs.get("definition") or {}
            if definition["channel"] != current.get("channel"):
                raise invalid(
                    f"The message's channel is {current.get('channel')}; it cannot become {definition['channel']}.",
                    pointer="/data/attributes/definition/channel",
                )
            merged = {**current, **definition}
            if isinstance(current.get("content"), dict) and isinstance(definition.get("content"), dict):
                merged["content"] = {**current["content"], **definition["content"]}
            self._set_definition(message, merged, now_stamp())
        image = ((data.get("relationships") or {}).get("image") or {}).get("data")
        if image:
            message.rels["image"] = image["id"]
        self.data.generation += 1
        return message

    def _assign(self, data: dict[str, Any]) -> Rec:
        message = self._message(str(data["id"]))
        source_id = data["relationships"]["template"]["data"]["id"]
        source = self.data.store.get("template", {}).get(source_id)
        if source is None:
            raise not_found(f"A template with id {source_id} was not found.")
        stamp = now_stamp()
        copy_id = short_id(self.rng)
        attrs = {**json.loads(json.dumps(source.attrs)), "created": stamp, "updated": stamp}
        copy = Rec("template", copy_id, attrs, {}, {"listed": False, "copied_from": source_id})
        self.data.store["template"][copy_id] = copy
        message.rels["template"] = copy_id
        message.attrs = {**message.attrs, "updated_at": stamp}
        self.data.generation += 1
        return message

    # ---- sending (never by the target) -----------------------------------------------------------
    def _send_job(self, op: Operation, ctx: RequestContext) -> tuple[int, dict[str, Any]]:
        data = body_data(ctx)
        campaign_id = str(data.get("id"))
        self.send_job_calls.append(SendJobCall(campaign_id, json.dumps(ctx.body)))
        campaign = self._draft(campaign_id)
        campaign.attrs = {**campaign.attrs, "status": "Sending", "updated_at": now_stamp()}
        job = Rec("campaign-send-job", campaign_id, {"status": "queued"})
        self.data.store.setdefault("campaign-send-job", {})[campaign_id] = job
        self.data.generation += 1
        return 202, resource_doc(op, ctx, self.data, job)


__all__ = ["CampaignApi", "SendJobCall"]
