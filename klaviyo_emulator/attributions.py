"""Attributions: which earlier message events (and their campaign or flow messages) an event's conversion is
credited to, and what an event's properties name for the reports, worked out from its index like the rest."""

from __future__ import annotations

from .events import ATTRIBUTED_ONE_IN, ATTRIBUTION_REACH, CONVERSION_KINDS, MESSAGE_KINDS, PATTERN_LEN, EventStore
from .records import Rec, mix64


class Attributions:
    """The credit side of an :class:`EventStore` (read-only: it only reads the store's index)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._flow_variations: dict[str, list[str]] | None = None

    def attributions(self, idx: int) -> list[Rec]:
        """The attributions of event ``idx`` (``include=attributions``): a share of base conversion events
        is credited to one or two earlier message events of the same profile, and to the campaign or flow
        message those events name in their properties."""
        store = self.store
        if idx >= store.n or store.metric_defs[store.pattern[idx % PATTERN_LEN]].kind not in CONVERSION_KINDS:
            return []
        h = mix64(idx ^ store.salt ^ 0xA77B)
        if h % ATTRIBUTED_ONE_IN:
            return []
        wanted = 1 + (h >> 8) % 2
        out: list[Rec] = []
        earlier = idx - store.nprof  # the same profile's previous event (profiles step by nprof)
        for _ in range(ATTRIBUTION_REACH):
            if earlier < 0 or len(out) == wanted:
                break
            links = self._credited(earlier, h >> (16 + 8 * len(out)))
            if links is not None:
                k = len(out)
                aid = f"{mix64((idx << 2 | k) ^ store.salt):016x}{idx:014x}{k:02x}"
                out.append(Rec("attribution", aid, {}, {"event": store.event_id(idx), **links}))
            earlier -= store.nprof
        return out

    def credited(self, idx: int) -> tuple[str, int] | None:
        """(message id, the touch's datetime) of the one attribution a conversion's revenue goes to: of
        several, the one whose message event is the latest (then the greatest attribution id), as the
        warehouse models choose, so no revenue counts twice."""
        store = self.store
        best: tuple[int, str, str] | None = None
        for rec in self.attributions(idx):
            touch = store.index_of(str(rec.rels["attributed-event"]))
            message = rec.rels.get("campaign-message") or rec.rels.get("flow-message")
            if touch is None or not message:
                continue
            candidate = (store.time_of(touch), rec.id, str(message))
            if best is None or candidate[:2] > best[:2]:
                best = candidate
        return None if best is None else (best[2], best[0])

    def report_facts(self, idx: int) -> tuple[str | None, str | None, float | None]:
        """(message id, form id, revenue value) the event's properties name, without building them."""
        store = self.store
        props = None if idx < store.n else store._extra_by_idx[idx].props
        if props is not None:
            value = props.get("$value")
            number = float(value) if isinstance(value, (int, float)) else None
            message, form = props.get("$message"), props.get("form_id")
            return (str(message) if message else None, str(form) if form else None, number)
        metric = store.metric_of(idx)
        kind = store.metric_defs[metric].kind
        h1 = mix64(mix64(idx ^ store.salt))
        if kind in MESSAGE_KINDS:
            found = self.message(_choices(kind, h1)[0])
            return (found[1] if found else None, None, None)
        if kind == "form" and store.ctx.forms:
            return (None, store.ctx.forms[_choices(kind, h1)[0] % len(store.ctx.forms)], None)
        if kind in ("order", "product", "checkout"):
            return (None, None, round(5 + (h1 % 20000) / 100, 2))
        return (None, None, None)

    def attribution_ids(self, idx: int) -> list[str]:
        return [a.id for a in self.attributions(idx)]

    def attribution(self, attribution_id: str) -> Rec | None:
        """One attribution by id (its id names the event and the position)."""
        try:
            idx, k = int(attribution_id[16:30], 16), int(attribution_id[30:], 16)
        except ValueError:
            return None
        found = self.attributions(idx) if len(attribution_id) == 32 else []
        return found[k] if k < len(found) and found[k].id == attribution_id else None

    def _credited(self, idx: int, h: int) -> dict[str, str] | None:
        """Relationships of an attribution to message event ``idx`` (None: not a message event)."""
        store = self.store
        metric = store.pattern[idx % PATTERN_LEN]
        kind = store.metric_defs[metric].kind
        if kind not in MESSAGE_KINDS:
            return None
        message = self.message(_choices(kind, mix64(mix64(idx ^ store.salt)))[0])
        if message is None:
            return None
        origin, message_id, parent_id, _name = message
        links = {"attributed-event": store.event_id(idx)}
        if origin == "campaign":
            return {**links, "campaign": parent_id, "campaign-message": message_id}
        variations = self.flow_variations().get(parent_id) or [message_id]
        variation = variations[h % len(variations)]
        return {**links, "flow": parent_id, "flow-message": message_id, "flow-message-variation": variation}

    def flow_variations(self) -> dict[str, list[str]]:
        """Flow id -> its messages (the variations an attributed flow message may have been sent as)."""
        store = self.store
        if self._flow_variations is None:
            by_flow: dict[str, list[str]] = {}
            for message_id, flow_id, _name in store.ctx.flow_messages:
                by_flow.setdefault(flow_id, []).append(message_id)
            self._flow_variations = by_flow
        return self._flow_variations

    def message(self, choice: int) -> tuple[str, str, str, str] | None:
        """The message a message event's properties name: (origin, message id, flow or campaign id, name)."""
        store = self.store
        ctx = store.ctx
        messages = len(ctx.flow_messages) + len(ctx.campaign_messages)
        if not messages:
            return None
        pick = choice % messages
        if pick < len(ctx.flow_messages):
            msg, flow, name = ctx.flow_messages[pick]
            return "flow", msg, flow, name
        msg, campaign, name, _channel = ctx.campaign_messages[pick - len(ctx.flow_messages)]
        return "campaign", msg, campaign, name


def _choices(kind: str, h: int) -> tuple[int, ...]:
    """The few hash-derived choices an event's property tail depends on."""
    if kind in ("email", "sms", "push"):
        return ((h >> 5) % 4096, (h >> 17) % 4, (h >> 21) % 8)
    if kind in ("order", "product", "checkout"):
        return ((h >> 7) % 4096, (h >> 13) % 3, (h >> 19) % 4)
    return ((h >> 9) % 4096,)
