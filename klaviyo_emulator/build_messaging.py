"""The account's messaging: templates, flows with their actions and messages, campaigns with theirs, and tags."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from .blueprint import Blueprint, uuid_from
from .fake import default_attributes, fake_value
from .records import DAY, SECOND, Rec, fmt, micros, short_id, ulid
from .spec import ResourceShape, get_spec
from .undocumented import legacy_flow_action

FLOW_NAMES = [
    "Welcome Series",
    "Abandoned Cart",
    "Browse Abandonment",
    "Post-Purchase",
    "Winback",
    "Birthday",
]
CAMPAIGN_STATUSES = ["Sent", "Sent", "Sent", "Draft", "Scheduled", "Cancelled", "Variations Sent"]
TRIGGER_TYPES = ["Added to List", "Metric", "Date Based", "Price Drop", "Low Inventory", "Unconfigured"]


def build_templates(bp: Blueprint) -> None:
    rng = bp.rng("templates")
    n = bp.spec_size.templates
    created = [bp.stamp(rng) for _ in range(n)]
    updated = [min(c + rng.randrange(0, 200 * DAY), bp.t1 - DAY) for c in created]
    order = sorted(range(n), key=lambda i: updated[i])
    if n > 11:
        for pos in range(8, 12):
            updated[order[pos]] = updated[order[11]]
    bp.template_ids = []
    for i in range(n):
        tid = short_id(rng)
        attrs = dict(default_attributes("template"))
        attrs.update(
            name=f"Template {i:03d}",
            editor_type=("CODE", "SYSTEM_DRAGGABLE", "USER_DRAGGABLE")[i % 3],
            html=f"<html><body><h1>Template {i}</h1><p>Hello {{{{ first_name }}}}</p></body></html>",
            text=f"Template {i}: Hello {{{{ first_name }}}}",
            amp=None,
            created=fmt(created[i]),
            updated=fmt(updated[i]),
        )
        bp.put(Rec("template", tid, attrs))
        bp.template_ids.append(tid)


def build_flows(bp: Blueprint) -> None:
    rng = bp.rng("flows")
    spec = get_spec()
    fa_schema = spec.operation("GET", "/api/flows/{id}/flow-actions").data
    fm_schema = spec.operation("GET", "/api/flow-actions/{id}/flow-messages").data
    assert fa_schema is not None and fm_schema is not None
    bp.flow_messages = []
    images = list(bp.store.get("image", {}))
    n = bp.spec_size.flows
    for i in range(n):
        fid = short_id(rng)
        created = bp.stamp(rng, bp.t0, bp.t1 - 200 * DAY)
        updated = min(created + rng.randrange(0, 300 * DAY), bp.t1 - DAY)
        archived = i % 6 == 5 or (i == n - 1)
        status = "draft" if archived else ("live", "live", "manual", "draft")[i % 4]
        trigger = TRIGGER_TYPES[i % len(TRIGGER_TYPES)]
        name = FLOW_NAMES[i % len(FLOW_NAMES)] + ("" if i < len(FLOW_NAMES) else f" {i}")
        attrs = dict(default_attributes("flow"))
        attrs.update(
            name=name,
            status=status,
            archived=archived,
            created=fmt(created),
            updated=fmt(updated),
            trigger_type=trigger,
        )
        flow = bp.put(Rec("flow", fid, attrs, {"flow-actions": [], "tags": []}))
        if trigger == "Metric":
            bp.store["metric"][bp.metric_ids[(i * 5) % len(bp.metric_ids)]].rels["flow-triggers"].append(fid)
        if trigger == "Added to List" and bp.list_ids:
            bp.store["list"][bp.list_ids[i % len(bp.list_ids)]].rels["flow-triggers"].append(fid)
        for j in range(2 + (i * 7 + 3) % 5):
            kind = FLOW_ACTION_KINDS[j % len(FLOW_ACTION_KINDS)] if j else "send-email"
            _flow_action(bp, rng, flow, (i, j, created, updated), kind, fa_schema, images)


#: The kinds of a flow's actions, in the order its steps take them (the first always sends an email).
FLOW_ACTION_KINDS = ["send-email", "time-delay", "send-sms", "conditional-split", "send-email", "send-mobile-push"]


def _flow_action(
    bp: Blueprint,
    rng: random.Random,
    flow: Rec,
    at: tuple[int, int, int, int],
    kind: str,
    fa_schema: ResourceShape,
    images: list[str],
) -> None:
    """Step ``j`` of flow ``i`` (``at``: i, j, the flow's created and updated), with its messages when it sends."""
    i, j, created, updated = at
    fid, status = flow.id, flow.attrs["status"]
    aid = str(rng.randrange(10_000_000, 99_999_999))
    a_created = created + j * 60 * SECOND
    definition = _variant(fa_schema.attributes["definition"], "type", kind, f"fa{aid}")
    if isinstance(definition, dict):
        definition["id"] = aid
    a_attrs = {
        "created": fmt(a_created),
        "updated": fmt(min(a_created + rng.randrange(0, 100 * DAY), updated)),
        "definition": definition,
    }
    action_type = kind.upper().replace("-", "_").replace("MOBILE_PUSH", "PUSH_NOTIFICATION")
    action = bp.put(
        Rec(
            "flow-action",
            aid,
            a_attrs,
            {"flow": fid, "flow-messages": []},
            {
                "action_type": action_type,
                "status": status,
                "legacy": legacy_flow_action(kind, status, a_attrs["created"], a_attrs["updated"]),
            },
        )
    )
    flow.rels["flow-actions"].append(aid)
    if not kind.startswith("send-"):
        return
    channel = {"send-email": "email", "send-sms": "sms", "send-mobile-push": "push"}[kind]
    variant = {"email": "FlowEmail", "sms": "FlowSms", "push": "FlowPushNotification"}[channel]
    name = flow.attrs["name"]
    spec = get_spec()
    for m in range(1 + (i + j) % 3):
        mid = short_id(rng)
        m_name = f"{name} - {channel} {j}.{m}"
        m_def = fake_value(spec, {"$ref": f"#/components/schemas/{variant}"}, f"fm{mid}", 2)
        m_def.update(name=m_name, id=mid)
        if channel == "email":
            m_def.update(SENDER, subject_line=f"{name}: step {j}.{m}", preview_text="We saved your cart")
        else:
            m_def["body"] = f"{name}: step {j}.{m}. Reply STOP to opt out."
        template = bp.template_ids[(i + j + m) % len(bp.template_ids)] if channel == "email" else None
        if "template_id" in m_def:
            m_def["template_id"] = template
        m_attrs = {
            "channel": channel,
            "created": a_attrs["created"],
            "updated": a_attrs["updated"],
            "definition": m_def,
        }
        image = images[(i + j + m) % len(images)] if channel != "email" and images and m % 2 == 0 else None
        rels = {"flow-action": aid, "template": template, "image": image}
        bp.put(Rec("flow-message", mid, m_attrs, rels, {"name": m_name}))
        action.rels["flow-messages"].append(mid)
        bp.flow_messages.append((mid, fid, m_name))


def build_campaigns(bp: Blueprint) -> None:
    rng = bp.rng("campaigns")
    bp.campaign_messages = []
    channels = ["email", "sms", "mobile_push"]
    n = bp.spec_size.campaigns
    images = list(bp.store.get("image", {}))
    for i in range(n):
        channel = channels[i] if i < 3 else ("email", "email", "email", "sms", "mobile_push")[rng.randrange(5)]
        created = bp.stamp(rng, bp.t0, bp.t1 - 60 * DAY)
        updated = min(created + rng.randrange(0, 300 * DAY), bp.t1 - DAY)
        status = CAMPAIGN_STATUSES[i % len(CAMPAIGN_STATUSES)]
        archived = i % 5 == 4 or i in (n - 1, n - 2)
        sent = status in ("Sent", "Variations Sent")
        send_time = created + rng.randrange(DAY, 30 * DAY) if sent or status == "Scheduled" else None
        cid = ulid(created, rng)
        name = f"{('Spring', 'Summer', 'Fall', 'Holiday', 'Flash')[i % 5]} {channel} campaign {i}"
        attrs = dict(default_attributes("campaign"))
        attrs.update(
            name=name,
            status=status,
            archived=archived,
            audiences={
                "included": [bp.list_ids[i % len(bp.list_ids)]],
                "excluded": [bp.segment_ids[i % len(bp.segment_ids)]] if i % 3 == 0 else [],
            },
            send_options={"use_smart_sending": i % 3 != 0},
            tracking_options=_tracking_options(i, channel),
            send_strategy={
                "method": "static",
                "datetime": fmt(send_time or created),
                "options": {"is_local": False, "send_past_recipients_immediately": None},
            },
            created_at=fmt(created, keep_micros=i % 4 == 0),
            scheduled_at=fmt(send_time - DAY) if send_time else None,
            updated_at=fmt(updated, keep_micros=i % 4 == 0),
            send_time=fmt(send_time) if send_time else None,
        )
        campaign = bp.put(Rec("campaign", cid, attrs, {"campaign-messages": [], "tags": []}, {"channel": channel}))
        bp.put(Rec("campaign-recipient-estimation", cid, {"estimated_recipient_count": 50 + (i * 97) % 5000}))
        _campaign_messages(bp, rng, campaign, (i, created, updated, send_time), images)
    _edit_oldest_live(bp, channels)


def _tracking_options(i: int, channel: str) -> dict[str, Any] | None:
    """A campaign's tracking options (push has none); every other one adds UTM parameters."""
    if channel == "mobile_push":
        return None
    return {
        "add_tracking_params": i % 2 == 0,
        "custom_tracking_params": (
            [
                {"type": "static", "value": "klaviyo", "name": "utm_source"},
                {"type": "dynamic", "value": "campaign_name", "name": "utm_campaign"},
            ]
            if i % 2 == 0
            else None
        ),
        "is_tracking_clicks": True,
        "is_tracking_opens": channel == "email",
    }


def _campaign_messages(
    bp: Blueprint, rng: random.Random, campaign: Rec, at: tuple[int, int, int, int | None], images: list[str]
) -> None:
    """Campaign ``i``'s messages (two for an A/B email); ``at``: i, created, updated, send time."""
    i, created, updated, send_time = at
    cid, name, channel = campaign.id, campaign.attrs["name"], campaign.extra["channel"]
    for m in range(2 if channel == "email" and i % 4 == 1 else 1):
        mid = ulid(created + m, rng)
        label = f"{name} {'AB'[m]}"
        definition, content = _message_definition(channel, label, i + m)
        m_attrs = dict(default_attributes("campaign-message"))
        m_attrs.update(
            definition=definition,
            send_times=[{"datetime": fmt(send_time), "is_local": False}] if send_time else [],
            created_at=fmt(created),
            updated_at=fmt(updated),
            channel=channel,
            label=label,
            content=content,
        )
        template = bp.template_ids[(i + m) % len(bp.template_ids)] if channel == "email" else None
        image = images[i % len(images)] if channel != "email" and images and i % 2 == 0 else None
        bp.put(
            Rec(
                "campaign-message",
                mid,
                m_attrs,
                {"campaign": cid, "template": template, "image": image},
            )
        )
        campaign.rels["campaign-messages"].append(mid)
        bp.campaign_messages.append((mid, cid, name, channel))


def _edit_oldest_live(bp: Blueprint, channels: list[str]) -> None:
    """The oldest live campaign of each channel was edited last, so the API's default order (by id,
    i.e. creation) is never the updated_at order: a sorted-stream assertion must not rely on it."""
    for channel in channels:
        live = sorted(
            r for r in bp.store["campaign"].values() if r.extra["channel"] == channel and not r.attrs["archived"]
        )
        if len(live) > 1:
            latest = max(micros(datetime.fromisoformat(r.attrs["updated_at"])) for r in live)
            live[0].attrs["updated_at"] = fmt(min(latest + 3600 * SECOND, bp.t1 - SECOND))


def build_tags(bp: Blueprint) -> None:
    rng = bp.rng("tags")
    groups = []
    for g, (name, exclusive) in enumerate([("Default", False), ("Season", True), ("Team", False)]):
        gid = str(rng.randrange(1_000_000, 9_999_999))
        bp.put(Rec("tag-group", gid, {"name": name, "exclusive": exclusive, "default": g == 0}, {"tags": []}))
        groups.append(gid)
    tags = []
    for t, name in enumerate(["Promo", "Newsletter", "Spring", "Holiday", "Ops", "Growth", "Retention", "VIP"]):
        tid = str(uuid_from(rng))
        group = groups[t % len(groups)]
        bp.put(Rec("tag", tid, {"name": name}, {"tag-group": group}))
        bp.store["tag-group"][group].rels["tags"].append(tid)
        tags.append(tid)
    for kind in ("campaign", "flow", "list", "segment"):
        for i, rec in enumerate(bp.store[kind].values()):
            if i % 3 == 0:
                rec.rels["tags"] = [tags[i % len(tags)]] + ([tags[(i + 3) % len(tags)]] if i % 2 else [])


def _variant(schema: dict[str, Any], key: str | None, value: str | None, seed_key: str) -> Any:
    """A fake value of the ``oneOf`` alternative whose ``key`` property allows ``value`` (else the first)."""
    spec = get_spec()
    flat = spec.flatten(schema)
    options = flat.get("oneOf") or flat.get("anyOf") or [flat]
    if key is not None:
        for option in options:
            props = spec.flatten(option).get("properties", {})
            if value in spec.resolve(props.get(key, {})).get("enum", ()):
                out = fake_value(spec, option, seed_key, 2)
                if isinstance(out, dict):
                    out[key] = value
                return out
    return fake_value(spec, options[0], seed_key, 2)


SENDER = {"from_email": "hello@emulated-outfitters.example", "from_label": "Emulated Outfitters"}


def _message_definition(channel: str, label: str, k: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A campaign message's ``definition`` (and legacy ``content``) for its channel, with real text."""
    if channel == "email":
        content = {
            "subject": f"{label}: {10 + k % 40}% off this week",
            "preview_text": "New arrivals inside",
            **SENDER,
            "reply_to_email": None,
            "cc_email": None,
            "bcc_email": None,
        }
        return {"channel": "email", "label": label, "content": content}, content
    if channel == "sms":
        content = {"body": f"{label}: {10 + k % 40}% off today. Reply STOP to opt out.", "media_url": None}
        options = {
            "shorten_links": True,
            "add_org_prefix": True,
            "add_info_link": True,
            "add_opt_out_language": k % 2 == 0,
        }
        return {"channel": "sms", "content": content, "render_options": options}, content
    content = {
        "title": label,
        "body": f"{10 + k % 40}% off in the app today",
        "dynamic_image": None,
        "action_buttons": None,
    }
    return {
        "channel": "mobile_push",
        "notification_type": "standard",
        "content": content,
        "kv_pairs": None,
        "options": None,
    }, content
