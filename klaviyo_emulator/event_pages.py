"""An event's JSON as the API sends it: one event (`render_json`), a page of them (`render_page`, the hot path
of big syncs) and the memoised property tails both share, worked out from the event's index."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .attributions import Attributions
from .events import ID_STRIDE, ID_WIDTH, MESSAGE_KINDS, PATTERN_LEN, EventStore, IndexKeys
from .records import BASE62, SECOND, Rec, base62, fmt, mix64

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
#: An event id's last four base-62 digits; the seven before them change once in ~1,900 events.
_ID_LOW = 62**4
_PAIRS62 = tuple(a + b for a in BASE62 for b in BASE62)
_MASK64 = 0xFFFFFFFFFFFFFFFF


class EventPages:
    """Renders a store's events; owns the memo of property tails (a few thousand per account)."""

    def __init__(self, store: EventStore, credit: Attributions) -> None:
        self.store = store
        self.credit = credit
        self._tails: dict[tuple[int, ...], str] = {}
        self._reducers: list[tuple[int, int, int, int, int, int]] | None = None

    def _parts(self, idx: int) -> tuple[str, int, int, str, int, dict[str, Any] | None, str]:
        """(id, datetime micros, metric index, profile id, property hash, stored properties, uuid)."""
        store = self.store
        h = mix64(idx ^ store.salt)
        h1 = mix64(h)
        props: dict[str, Any] | None = None
        if idx < store.n:
            t = store.base_time(idx, h)
            metric = store.pattern[idx % PATTERN_LEN]
            profile = store.profile_ids[(store.pa * idx + store.pb) % store.nprof]
        else:
            extra = store._extra_by_idx[idx]
            t, metric, profile, props = extra.t, extra.metric, extra.profile, extra.props
        x = (h1 << 64) | (h * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF)
        x = (x & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x1000 << 64) | (0x8000 << 48)  # RFC 4122 version 1
        s = f"{x:032x}"
        event_uuid = f"{s[:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:]}"
        return store.event_id(idx, h), t, metric, profile, h1, props, event_uuid

    def record(self, idx: int) -> Rec:
        """The event as a record (attributes + relationship ids)."""
        store = self.store
        eid, t, metric, profile, h1, props, event_uuid = self._parts(idx)
        if props is None:
            props = self.properties(idx, metric, h1)
        attrs = {
            "timestamp": t // SECOND,
            "event_properties": props,
            "datetime": fmt(t, keep_micros=True),
            "uuid": event_uuid,
        }
        attributions = self.credit.attribution_ids(idx)
        rels = {"metric": store.metric_ids[metric], "profile": profile, "attributions": attributions}
        return Rec("event", eid, attrs, rels)

    def render_json(self, idx: int, base: str, attributions: bool) -> str:
        """The event's JSON:API object as JSON text, built directly (the hot path of big syncs).

        Same output as the generic renderer for the spec's event shape; ``base`` must be JSON-safe.
        """
        store = self.store
        eid, t, metric, profile, h1, props, event_uuid = self._parts(idx)
        props_json = self.properties_json(idx, metric, h1) if props is None else _dumps(props)
        link = f"{base}/api/events/{eid}"
        data = ""
        if attributions:
            refs = ",".join(f'{{"type":"attribution","id":"{a}"}}' for a in self.credit.attribution_ids(idx))
            data = f'"data":[{refs}],'
        return (
            f'{{"type":"event","id":"{eid}","attributes":{{"timestamp":{t // SECOND},"event_properties":'
            f'{props_json},"datetime":"{fmt(t, True)}","uuid":"{event_uuid}"}},"relationships":{{'
            f'"profile":{{"data":{{"type":"profile","id":"{profile}"}},"links":{{"self":"{link}/relationships/'
            f'profile/","related":"{link}/profile/"}}}},"metric":{{"data":{{"type":"metric","id":'
            f'"{store.metric_ids[metric]}"}},"links":{{"self":"{link}/relationships/metric/","related":'
            f'"{link}/metric/"}}}},"attributions":{{{data}"links":{{"self":"{link}/relationships/attributions/",'
            f'"related":"{link}/attributions/"}}}}}},"links":{{"self":"{link}/"}}}}'
        )

    @staticmethod
    def indices_of(keys: Sequence[tuple[int, int]]) -> Sequence[int]:
        """The event indices of a page's keys (a range when they are consecutive base events)."""
        return keys.indices if isinstance(keys, IndexKeys) else [idx for _t, idx in keys]

    def render_page(self, keys: Sequence[tuple[int, int]], base: str, attributions: bool) -> str:
        """A page of events as the JSON text of its ``data`` items (the hot path of big syncs): the same text as
        `render_json` per event, with what a page shares (constants, the id's high digits, the links' start)
        worked out once and the per-event steps inlined (``mix64``, ``base_time``, ``fmt``, the uuid)."""
        store = self.store
        indices = self.indices_of(keys)
        if not indices:
            return ""
        n, salt, t0, span, n2 = store.n, store.salt, store.t0, store.span, 2 * store.n
        pattern, metric_ids, profile_at, tails = store.pattern, store.metric_ids, store.profile_at, self._tails
        reducers = self.tail_reducers()
        pa, pb, nprof, known = store.pa, store.pb, store.nprof, store.known_profile_ids
        #: Per metric: 0 no price, 1 a price, 2 a price and an order id.
        priced = [2 if d.kind in ("order", "checkout") else 1 if d.kind == "product" else 0 for d in store.metric_defs]
        first, last = min(indices[0], indices[-1]), max(indices[0], indices[-1])
        clustered = any(start <= last and first < end for start, end in store.clusters)
        link = f"{base}/api/events/"
        high, high_text, minute_of, minute_text = -1, "", -1, ""
        out = []
        for idx in indices:
            if idx >= n or clustered or attributions:
                out.append(self.render_json(idx, base, attributions))
                continue
            h = ((idx ^ salt) + 0x9E3779B97F4A7C15) & _MASK64
            h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
            h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
            h ^= h >> 31
            h1 = (h + 0x9E3779B97F4A7C15) & _MASK64
            h1 = ((h1 ^ (h1 >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
            h1 = ((h1 ^ (h1 >> 27)) * 0x94D049BB133111EB) & _MASK64
            h1 ^= h1 >> 31
            seconds = (t0 + ((2 * idx + (h & 1)) * span) // n2) // SECOND
            minute, second = divmod(seconds, 60)
            if minute != minute_of:
                minute_of, minute_text = minute, fmt(minute * 60 * SECOND)[:17]
            micros = (h >> 16) % SECOND if (h >> 8) % 5 == 0 else 0
            stamp = f"{minute_text}{second:02d}.{micros:06d}+00:00" if micros else f"{minute_text}{second:02d}+00:00"
            metric = pattern[idx % PATTERN_LEN]
            props = f'{{"$event_id":"{idx}:{h1 % 100000}"'
            if priced[metric]:
                props += f',"$value":{round(5 + (h1 % 20000) / 100, 2)!r}'
                if priced[metric] == 2:
                    props += f',"OrderId":"#{1000 + idx}"'
            s0, m0, s1, m1, s2, m2 = reducers[metric]
            key = (metric, (h1 >> s0) % 4096 % m0, (h1 >> s1) % m1, (h1 >> s2) % m2)
            tail = tails.get(key)
            if tail is None:
                tail = tails[key] = self._tail(metric, key[1:])
            top, low = divmod(idx * ID_STRIDE + h % ID_STRIDE, _ID_LOW)
            if top != high:
                high, high_text = top, "4" + base62(top, ID_WIDTH - 5)
            eid = high_text + _PAIRS62[low // 3844] + _PAIRS62[low % 3844]
            uuid = f"{(h1 & ~0xF000) | 0x1000:016x}{(h * 0x9E3779B97F4A7C15 & 0x3FFFFFFFFFFFFFFF) | 1 << 63:016x}"
            ref = link + eid
            position = (pa * idx + pb) % nprof
            profile = known[position] if known is not None else None
            if profile is None:
                profile = profile_at(position)
            out.append(
                f'{{"type":"event","id":"{eid}","attributes":{{"timestamp":{seconds},"event_properties":{props}'
                f'{tail},"datetime":"{stamp}","uuid":"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-'
                f'{uuid[16:20]}-{uuid[20:]}"}},"relationships":{{"profile":{{"data":{{"type":"profile","id":"{profile}"}},"links":{{"self":"{ref}/relationships/profile/",'
                f'"related":"{ref}/profile/"}}}},"metric":{{"data":{{"type":"metric","id":"{metric_ids[metric]}"}},'
                f'"links":{{"self":"{ref}/relationships/metric/","related":"{ref}/metric/"}}}},"attributions":{{'
                f'"links":{{"self":"{ref}/relationships/attributions/","related":"{ref}/attributions/"}}}}}},'
                f'"links":{{"self":"{ref}/"}}}}'
            )
        return ",".join(out)

    def properties(self, idx: int, metric: int, h: int) -> dict[str, Any]:
        """Event properties by metric kind, pointing at real campaigns, flows, lists and products."""
        value: dict[str, Any] = json.loads(self.properties_json(idx, metric, h))
        return value

    def properties_json(self, idx: int, metric: int, h: int) -> str:
        """Event properties as JSON text: a per-event head plus a memoised tail (the hot path of syncs).

        The tail depends only on a few choices (which message, product, list...), so it is built once per
        combination; only ``$event_id``, ``$value`` and order ids vary per event.
        """
        store = self.store
        kind = store.metric_defs[metric].kind
        head = f'{{"$event_id":"{idx}:{h % 100000}"'
        if kind in ("order", "product", "checkout"):
            head += f',"$value":{round(5 + (h % 20000) / 100, 2)!r}'
            if kind != "product":
                head += f',"OrderId":"#{1000 + idx}"'
        return head + self._tail_text(metric, h)

    def _tail_text(self, metric: int, h: int) -> str:
        s0, m0, s1, m1, s2, m2 = self.tail_reducers()[metric]
        key = (metric, (h >> s0) % 4096 % m0, (h >> s1) % m1, (h >> s2) % m2)
        tail = self._tails.get(key)
        if tail is None:
            tail = self._tails[key] = self._tail(metric, key[1:])
        return tail

    def precompute_tails(self) -> None:
        """Every property tail, before the account is served (the benchmark's full-size accounts: a few thousand
        per metric): a page's first render would otherwise build hundreds."""
        for metric, (_s0, m0, _s1, m1, _s2, m2) in enumerate(self.tail_reducers()):
            for first in range(min(m0, 4096)):
                for second in range(m1):
                    for third in range(m2):
                        key = (metric, first, second, third)
                        if key not in self._tails:
                            self._tails[key] = self._tail(metric, key[1:])

    def tail_reducers(self) -> list[tuple[int, int, int, int, int, int]]:
        """Per metric, how its tail's choices come out of an event's hash: ``(h >> shift) % modulus`` three
        times, the first also ``% 4096`` (`_choices`), reduced to what `_tail` reads of them (the message,
        product, list or form picked; 1: not read), so the memo holds thousands of tails, not one per event."""
        store = self.store
        if self._reducers is None:
            ctx = store.ctx
            messages = len(ctx.flow_messages) + len(ctx.campaign_messages)
            picks = {"site": 50, "list": len(ctx.lists), "form": len(ctx.forms)}
            reducers = []
            for mdef in store.metric_defs:
                kind, name = mdef.kind, mdef.name
                if kind in MESSAGE_KINDS:
                    third = 8 if name == "Clicked Email" else 2 if name == "Bounced Email" else 1
                    reducers.append((5, messages or 1, 17, 4 if kind == "email" else 1, 21, third))
                elif kind in ("order", "product", "checkout"):
                    second, third = (3 if kind == "product" else 1), (4 if kind == "order" else 1)
                    reducers.append((7, len(ctx.products) or 1, 13, second, 19, third))
                else:
                    reducers.append((9, picks.get(kind) or 1, 0, 1, 0, 1))
            self._reducers = reducers
        return self._reducers

    def _tail(self, metric: int, choice: tuple[int, ...]) -> str:
        store = self.store
        mdef = store.metric_defs[metric]
        kind, ctx = mdef.kind, store.ctx
        props: dict[str, Any] = {}
        if kind in MESSAGE_KINDS:
            messages = len(ctx.flow_messages) + len(ctx.campaign_messages)
            pick = choice[0] % messages if messages else 0
            message = self.credit.message(choice[0])
            if message is not None and message[0] == "flow":
                props.update({"$message": message[1], "$flow": message[2], "Message Name": message[3]})
            elif message is not None:
                props.update({"$message": message[1], "Campaign Name": message[3], "$flow": ""})
            if kind == "email":
                props["Subject"] = f"Subject {pick % 97}"
                props["Email Domain"] = ("gmail.com", "yahoo.com", "outlook.com", "example.com")[choice[1]]
                if mdef.name == "Clicked Email":
                    props["URL"] = f"https://shop.example.com/p/{choice[2] * 61 % 500}"
                if mdef.name == "Bounced Email":
                    props["Bounce Type"] = ("hard", "soft")[choice[2] % 2]
            elif kind == "sms":
                props.update({"Message Body": "Hi! Our sale starts today.", "From Number": "+15005550006"})
        elif kind in ("order", "product", "checkout"):
            if ctx.products:
                pid, title, price = ctx.products[choice[0] % len(ctx.products)]
                if kind == "product":
                    props.update({"ProductID": pid, "ProductName": title, "Price": price, "Quantity": 1 + choice[1]})
                else:
                    props.update({"ItemNames": [title], "Items": [{"ProductID": pid, "Price": price}]})
            if kind == "order":
                codes = ["WELCOME10"] if choice[2] == 0 else []
                props["$extra"] = {"discount_codes": codes, "source": "web"}
        elif kind == "site":
            props.update({"page": f"https://shop.example.com/{choice[0] % 50}", "$is_session_activity": True})
        elif kind == "list" and ctx.lists:
            list_id, name = ctx.lists[choice[0] % len(ctx.lists)]
            props.update({"List": name, "$list": list_id})
        elif kind == "form" and ctx.forms:
            props["form_id"] = ctx.forms[choice[0] % len(ctx.forms)]
        else:
            props["Source"] = "API"
        text = _dumps(props)
        return "," + text[1:] if len(text) > 2 else "}"
