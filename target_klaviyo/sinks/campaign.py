"""campaign (+ campaign_messages, campaign_message_template): campaign drafts matched by name.

A campaign is created as a DRAFT with its audiences (lists and segments translated by name), send strategy,
send and tracking options, and its messages (their definitions); each message's template is copied in (a
CODE template made for the assignment, assigned, then deleted: Klaviyo keeps its own copy for the message).
An existing draft is updated where its audiences or options differ. A campaign that is not a draft in the
target account (sent, scheduled, cancelled) is never touched: its row is rejected. The target never calls
/api/campaign-send-jobs: nothing it writes leaves draft.

Campaigns are written at the end of the input, when every message, list and segment row has been read.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from typing_extensions import override

from klaviyo_core.client import AmbiguousWrite
from target_klaviyo.sinks.base import KlaviyoSink
from target_klaviyo.sinks.objects import ObjectSink, Wanted, text_of
from target_klaviyo.sinks.template import TEMPLATES
from target_klaviyo.writing.keyed import Action, KeyedObjects, Known, delete_object
from target_klaviyo.writing.pipeline import Unit
from target_klaviyo.writing.references import Translator
from target_klaviyo.writing.rows import RowError, jsonable

CAMPAIGNS = "/api/campaigns"
ASSIGN = "/api/campaign-message-assign-template"
CHANNELS = ("email", "sms", "mobile_push")
DRAFT = "Draft"
OPTIONS = ("send_strategy", "send_options", "tracking_options")
SIDES = ("included", "excluded")


def message_data(message: dict[str, Any], image_id: str | None) -> dict[str, Any]:
    """A message of the draft: its definition, and its image (SMS, push) in the target account."""
    data: dict[str, Any] = {"type": "campaign-message", "attributes": {"definition": message.get("definition")}}
    if image_id:
        data["relationships"] = {"image": {"data": {"type": "image", "id": image_id}}}
    return data


def label_of(message: dict[str, Any]) -> Any:
    definition = (message.get("attributes") or message).get("definition") or {}
    return definition.get("label")


class CampaignSink(ObjectSink):
    name = "campaign"
    collection = CAMPAIGNS
    finish_rank = 3
    depends_on = ("list", "segment", "template", "image")

    @cached_property
    @override
    def objects(self) -> KeyedObjects:
        """Campaigns are listed one channel at a time (Klaviyo requires the channel filter)."""
        listings = tuple({"filter": f"equals(messages.channel,'{channel}')"} for channel in CHANNELS)
        return self.klaviyo.objects.of(CAMPAIGNS, listings[0], "name", self.what, more_params=listings[1:])

    @cached_property
    def translator(self) -> Translator:
        return Translator(self.klaviyo.names, self.klaviyo.lists, self.klaviyo.objects, self.what)

    @override
    def parse(self, row: dict[str, Any]) -> Wanted:
        name = text_of(row, "name")
        source = {"source_id": str(row.get("id") or "")}
        if row.get("_sdc_deleted_at") is not None:
            return Wanted(name, extra=source)
        audiences = row.get("audiences") or {}
        if not audiences.get("included"):
            raise RowError("no audiences.included: a campaign is created for lists or segments")
        attributes = {name: row[name] for name in OPTIONS if row.get(name) is not None}
        return Wanted(name, attributes, extra={**source, "audiences": audiences})

    @override
    def resolve(self, wanted: Wanted, final: bool) -> bool:
        """Campaigns wait for the end of the input (their messages, lists and segments are all read then)."""
        if wanted.deleting:
            return True
        if not final:
            return False
        audiences = wanted.extra["audiences"]
        try:
            wanted.attributes["audiences"] = {
                side: [self.translator.group(str(gid), True) for gid in audiences.get(side) or []] for side in SIDES
            }
            wanted.extra["images"] = {
                str(message.get("id")): self.translator.image(str(message["image_id"]), True)
                for message, _template in self.klaviyo.campaign_parts.of(str(wanted.extra["source_id"]))
                if message.get("image_id")
            }
        except RowError as exc:
            self.settle_parts(wanted, None, exc)
            raise
        return True

    @override
    def decide(self, wanted: Wanted) -> tuple[Action, Known | None, dict[str, Any]]:
        action, found, attributes = super().decide(wanted)
        if found is not None and found.attributes.get("status") != DRAFT:
            status = found.attributes.get("status")
            raise RowError(
                f"the target account's campaign {wanted.key!r} is not a draft ({status}): it is never touched"
            )
        return action, found, attributes

    @override
    def mirrored(self, known: Known) -> bool:
        return known.attributes.get("status") == DRAFT

    @override
    def apply_one(self, wanted: Wanted) -> Action:
        """The campaign, then the outcome of its message and template rows (rejected with it)."""
        try:
            action = super().apply_one(wanted)
        except RowError as exc:
            self.settle_parts(wanted, None, exc)
            raise
        self.settle_parts(wanted, action, None)
        return action

    def settle_parts(self, wanted: Wanted, action: Action | None, error: RowError | None) -> None:
        source = str(wanted.extra.get("source_id"))
        reason = f"its campaign {wanted.key!r} was not written: {error}"
        parts = self.klaviyo.campaign_parts
        outcomes = self.klaviyo.outcomes
        for message, template in parts.of(source):
            rows = [("campaign_messages", message), *([("campaign_message_template", template)] if template else [])]
            for stream, row in rows:
                if error is not None:
                    outcomes.reject(stream, row, reason)
                else:
                    outcome = action.value if action in (Action.CREATE, Action.DELETE) else "unchanged"
                    outcomes.count(stream, outcome)
        parts.settle(source)

    @override
    def create(self, wanted: Wanted) -> Known:
        parts = self.klaviyo.campaign_parts.of(str(wanted.extra["source_id"]))
        if not parts:
            raise RowError("no campaign_messages rows for it: a campaign is created with its messages")
        images = wanted.extra.get("images") or {}
        messages = [message_data(message, images.get(str(message.get("id")))) for message, _template in parts]
        attributes = {"name": wanted.key, **wanted.attributes, "campaign-messages": {"data": messages}}
        body = {"data": {"type": "campaign", "attributes": attributes}}
        doc = self.klaviyo.client.request("POST", CAMPAIGNS, body=body, idempotent=False, what=self.what).json()
        related = ((doc["data"].get("relationships") or {}).get("campaign-messages") or {}).get("data") or []
        for (_message, template), created in zip(parts, related, strict=False):
            if template is not None and template.get("html"):
                self.assign(str(created["id"]), template)
        return Known(str(doc["data"]["id"]), dict(doc["data"].get("attributes") or {}))

    @override
    def recovered(self, wanted: Wanted, found: Known) -> None:
        """The draft was made by a call that failed unclearly: its messages (matched by label) get their
        templates now."""
        parts = self.klaviyo.campaign_parts.of(str(wanted.extra["source_id"]))
        doc = self.klaviyo.client.request("GET", f"{CAMPAIGNS}/{found.id}/campaign-messages", what=self.what).json()
        by_label = {label_of(message): str(message["id"]) for message in doc.get("data") or []}
        for message, template in parts:
            message_id = by_label.get(label_of(message))
            if message_id is not None and template is not None and template.get("html"):
                self.assign(message_id, template)

    def assign(self, message_id: str, template: dict[str, Any]) -> None:
        """Klaviyo assigns a template by copying it into the message. The one made for that has a name of its
        own (found again, not made twice, after an unclear failure) and is deleted; the copy keeps the row's name."""
        name = str(template.get("name") or "campaign message")
        made_for = f"{name} (target-klaviyo {message_id})".replace('"', "'")  # a filter's quoted string
        attributes = {"name": made_for, "editor_type": "CODE"}
        attributes.update({k: template[k] for k in ("html", "text") if template.get(k)})
        data = {"type": "template", "attributes": attributes}
        try:
            made = self.post(TEMPLATES, data)
        except AmbiguousWrite:
            params = {"filter": f'equals(name,"{made_for}")', "fields[template]": "name"}
            found = self.klaviyo.client.pages(TEMPLATES, params, self.what)
            made = Known(str(found[0]["id"]), {}) if found else self.post(TEMPLATES, data)
        relationships = {"template": {"data": {"type": "template", "id": made.id}}}
        body = {"data": {"type": "campaign-message", "id": message_id, "relationships": relationships}}
        doc = self.klaviyo.client.request("POST", ASSIGN, body=body, what=self.what).json()
        delete_object(self.klaviyo.client, f"{TEMPLATES}/{made.id}", self.what)
        copy = (((doc.get("data") or {}).get("relationships") or {}).get("template") or {}).get("data") or {}
        if copy.get("id"):
            self.patch(TEMPLATES, "template", Known(str(copy["id"]), {}), {"name": name})

    @override
    def update(self, known: Known, attributes: dict[str, Any]) -> None:
        self.patch(CAMPAIGNS, "campaign", known, attributes)

    @override
    def delete(self, known: Known) -> None:
        delete_object(self.klaviyo.client, f"{CAMPAIGNS}/{known.id}", self.what)

    @override
    def finish(self) -> None:
        """Campaigns are written; message and template rows whose campaign never came are rejected."""
        super().finish()
        self.klaviyo.campaign_parts.close(self.klaviyo.outcomes.reject)


class CampaignPartSink(KlaviyoSink):
    """campaign_messages and campaign_message_template rows: kept for their campaign, which writes them."""

    finish_rank = 4  # after the campaigns

    @override
    def finish(self) -> None:
        """Without a campaign stream the rows have no campaign: rejected, so the run ends."""
        self.klaviyo.campaign_parts.close(self.klaviyo.outcomes.reject)

    @override
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        super().process_record(record, context)
        row = jsonable(dict(record))
        parts = self.klaviyo.campaign_parts
        parts.add_message(row) if self.name == "campaign_messages" else parts.add_template(row)

    @override
    def write(self, rows: list[dict[str, Any]], unit: Unit) -> None:
        self.klaviyo.campaign_parts.hold(unit)
        self.sent(unit, len(rows))


class CampaignMessagesSink(CampaignPartSink):
    name = "campaign_messages"


class CampaignMessageTemplateSink(CampaignPartSink):
    name = "campaign_message_template"
