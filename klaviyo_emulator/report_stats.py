"""The statistics of campaign, flow and form reports, counted from the account's own events.

Klaviyo computes its reports "based on send date" (its Reporting API overview): what a send earned counts
where the send is. So here a campaign's figures are everything its messages' events say (receipts, opens,
clicks, bounces, unsubscribes, spam complaints, and the conversions Klaviyo attributed to them), all on
the campaign's send time; a flow sends all the time, so its message events count at their own datetime
and an attributed conversion at the datetime of the message event it is credited to. A conversion
credited to several messages counts once, for the message the warehouse models credit (the latest
touch). Forms count their "Viewed Form" and "Submitted Form" events. The tallies of an account are built
once per change of it (`AccountData.generation`) and conversion metric.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .events import CONVERSION_KINDS, EventQuery

if TYPE_CHECKING:
    from .data import AccountData

#: What each message metric counts as in a report.
MESSAGE_STATS = {
    "Received Email": "recipients",
    "Received SMS": "recipients",
    "Received Push": "recipients",
    "Opened Email": "opens",
    "Clicked Email": "clicks",
    "Clicked SMS": "clicks",
    "Bounced Email": "bounced",
    "Unsubscribed from Email Marketing": "unsubscribes",
    "Unsubscribed from SMS Marketing": "unsubscribes",
    "Marked Email as Spam": "spam_complaints",
}
FORM_STATS = {"Viewed Form": "viewed_form", "Submitted Form": "submits"}
#: Klaviyo's cost of one SMS segment in the emulator (text_message_spend).
SMS_SEGMENT_PRICE = 0.0075

#: (datetime in epoch micros, who) of one event; conversions also carry their value.
Touch = tuple[int, Hashable]
Conversion = tuple[int, Hashable, float]


@dataclass
class Events:
    """One message's or form's events by what they count as, each list in datetime order."""

    kinds: dict[str, list[Touch]] = field(default_factory=dict)
    conversions: list[Conversion] = field(default_factory=list)
    #: Form events: the event index too, to share them among a form's versions.
    indexed: dict[str, list[tuple[int, Hashable, int]]] = field(default_factory=dict)


@dataclass
class Tallies:
    """Every message's and form's events in the account, for one conversion metric."""

    messages: dict[str, Events]
    forms: dict[str, Events]
    #: Per message id: "sms" when its channel is SMS (text-message statistics).
    sms: set[str]


def tallies(data: AccountData, conversion_metric_id: str | None) -> Tallies:
    """The account's tallies for a conversion metric, built on first use after each change of the account."""
    key = (data.generation, data.event_count(), conversion_metric_id)
    cached = data.report_tallies.get(key)
    if cached is None:
        data.report_tallies.clear()
        cached = data.report_tallies[key] = _build(data, conversion_metric_id)
    return cached


def _build(data: AccountData, conversion_metric_id: str | None) -> Tallies:
    store, credit = data.events, data.attributions
    names = {k: d.name for k, d in enumerate(store.metric_defs)}
    wanted = {store.metric_ids[k] for k, name in names.items() if name in MESSAGE_STATS or name in FORM_STATS}
    conversion = store.metric_index.get(conversion_metric_id or "", -1)
    if conversion >= 0 and conversion < len(store.metric_defs):
        wanted.add(str(conversion_metric_id))
    messages: dict[str, Events] = {}
    forms: dict[str, Events] = {}
    for t, idx in store.iter_keys(EventQuery(metric_ids=frozenset(wanted))):
        metric = store.metric_of(idx)
        message, form, value = credit.report_facts(idx)
        name = names.get(metric, "")
        if metric == conversion:
            if store.metric_defs[metric].kind not in CONVERSION_KINDS or value is None:
                continue
            credited = credit.credited(idx)
            if credited is not None:
                messages.setdefault(credited[0], Events()).conversions.append((credited[1], store.who(idx), value))
        elif name in MESSAGE_STATS and message:
            messages.setdefault(message, Events()).kinds.setdefault(MESSAGE_STATS[name], []).append((t, store.who(idx)))
        elif name in FORM_STATS and form:
            forms.setdefault(form, Events()).indexed.setdefault(FORM_STATS[name], []).append((t, store.who(idx), idx))
    for events in messages.values():
        events.conversions.sort(key=lambda c: c[0])  # by the touch's datetime, not the conversion's
    sms = {m for m, _c, _n, channel in store.ctx.campaign_messages if channel == "sms"}
    sms |= {r.id for r in data.records("flow-message") if r.attrs.get("channel") == "sms"}
    return Tallies(messages, forms, sms)


@dataclass
class Part:
    """One message (or form version) of a report row: its events, and where they count."""

    events: Events
    sms: bool = False
    #: A campaign's send time: everything counts there (None: each event at its own datetime).
    sent_at: int | None = None
    #: A form version's share of the form's events: (k, n) takes the events whose index is k mod n.
    share: tuple[int, int] | None = None


class Row:
    """The figures of one report row (one grouping): the sum of its parts, within [lo, hi)."""

    def __init__(self, parts: list[Part]) -> None:
        self.parts = parts

    def figures(self, lo: int, hi: int) -> dict[str, float]:
        counts: dict[str, float] = {}
        uniques: dict[str, set[Hashable]] = {}
        for part in self.parts:
            whole = part.sent_at is not None
            if whole and not lo <= part.sent_at < hi:  # type: ignore[operator]
                continue
            for kind, touches in part.events.kinds.items():
                picked = touches if whole else _within(touches, lo, hi)
                counts[kind] = counts.get(kind, 0) + len(picked)
                uniques.setdefault(kind, set()).update(who for _t, who in picked)
                if kind == "recipients" and part.sms:
                    counts["sms_recipients"] = counts.get("sms_recipients", 0) + len(picked)
            for kind, indexed in part.events.indexed.items():
                chosen = [(t, who) for t, who, idx in _within(indexed, lo, hi) if _shared(part.share, idx)]
                counts[kind] = counts.get(kind, 0) + len(chosen)
                uniques.setdefault(kind, set()).update(who for _t, who in chosen)
            converted = part.events.conversions if whole else _within(part.events.conversions, lo, hi)
            counts["conversions"] = counts.get("conversions", 0) + len(converted)
            counts["conversion_value"] = counts.get("conversion_value", 0.0) + sum(c[2] for c in converted)
            uniques.setdefault("conversions", set()).update(c[1] for c in converted)
        for kind, seen in uniques.items():
            counts[f"{kind}_unique"] = len(seen)
        return counts


def _within(items: list[Any], lo: int, hi: int) -> list[Any]:
    """The items (datetime first, in order) within [lo, hi)."""
    return items[bisect.bisect_left(items, (lo,)) : bisect.bisect_left(items, (hi,))]


def _shared(share: tuple[int, int] | None, idx: int) -> bool:
    return share is None or idx % share[1] == share[0]


def message_statistic(stat: str, f: dict[str, float]) -> float | int:
    """One campaign or flow statistic from a row's figures; rates are fractions of their base."""
    recipients = int(f.get("recipients", 0))
    bounced = int(f.get("bounced", 0))
    delivered = max(0, recipients - bounced)
    conversions = int(f.get("conversions", 0))
    value = round(f.get("conversion_value", 0.0), 2)
    sms = int(f.get("sms_recipients", 0))
    spend = round(sms * SMS_SEGMENT_PRICE, 2)
    counts: dict[str, float | int] = {
        "recipients": recipients,
        "delivered": delivered,
        "bounced": bounced,
        "failed": 0,
        "bounced_or_failed": bounced,
        "opens": int(f.get("opens", 0)),
        "opens_unique": int(f.get("opens_unique", 0)),
        "clicks": int(f.get("clicks", 0)),
        "clicks_unique": int(f.get("clicks_unique", 0)),
        "conversions": conversions,
        "conversion_uniques": int(f.get("conversions_unique", 0)),
        "conversion_value": value,
        "unsubscribes": int(f.get("unsubscribes", 0)),
        "unsubscribe_uniques": int(f.get("unsubscribes_unique", 0)),
        "spam_complaints": int(f.get("spam_complaints", 0)),
        "message_segment_count_sum": sms,
        "text_message_credit_usage_amount": sms,
        "text_message_spend": spend,
        "average_order_value": round(value / conversions, 2) if conversions else 0.0,
        "revenue_per_recipient": round(value / recipients, 4) if recipients else 0.0,
        "text_message_roi": round(value / spend, 4) if spend else 0.0,
    }
    return counts[stat] if stat in counts else _rate(stat, counts)


def form_statistic(stat: str, f: dict[str, float]) -> float | int:
    """One form statistic: its forms have one step, and a view not submitted was closed."""
    views, viewers = int(f.get("viewed_form", 0)), int(f.get("viewed_form_unique", 0))
    submits, submitters = int(f.get("submits", 0)), int(f.get("submits_unique", 0))
    counts: dict[str, float | int] = {
        "viewed_form": views,
        "viewed_form_uniques": viewers,
        "viewed_form_step": views,
        "viewed_form_step_uniques": viewers,
        "qualified_form": views,
        "qualified_form_uniques": viewers,
        "submits": submits,
        "submitted_form_step": submits,
        "submitted_form_step_uniques": submitters,
        "closed_form": max(0, views - submits),
        "closed_form_uniques": max(0, viewers - submitters),
    }
    return counts[stat] if stat in counts else _rate(stat, counts)


RATE_STATS = {
    "bounce_rate": ("bounced", "recipients"),
    "bounced_or_failed_rate": ("bounced_or_failed", "recipients"),
    "click_rate": ("clicks_unique", "delivered"),
    "click_to_open_rate": ("clicks_unique", "opens_unique"),
    "conversion_rate": ("conversion_uniques", "delivered"),
    "delivery_rate": ("delivered", "recipients"),
    "failed_rate": ("failed", "recipients"),
    "open_rate": ("opens_unique", "delivered"),
    "spam_complaint_rate": ("spam_complaints", "delivered"),
    "unsubscribe_rate": ("unsubscribe_uniques", "delivered"),
    "submit_rate": ("submits", "viewed_form_uniques"),
}


def _rate(stat: str, counts: dict[str, float | int]) -> float:
    """A rate as Klaviyo returns it, a fraction in [0, 1] (the generated events are not a funnel: capped)."""
    top, bottom = RATE_STATS[stat]
    return round(min(1.0, counts[top] / counts[bottom]), 6) if counts[bottom] else 0.0
