"""Events computed lazily from their index, so a million-event account costs no memory.

Base event ``i`` (``0 <= i < n``) has a datetime that never decreases with ``i``; its metric comes from a
shuffled weighted pattern of length :data:`PATTERN_LEN` and its profile from ``(a*i + b) mod P``, so a
``metric_id`` or ``profile_id`` filter maps to an arithmetic walk instead of a scan, and a datetime range
maps to an index range by bisection. Events added later (late arrivals, future-dated ones) live in a
small sorted side list and are merged in.

Order everywhere is (datetime, index); event ids are fixed-width base-62 numbers increasing with the
index, so ties on datetime are broken by id as the API does.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import json
import math
import random
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from .lazy import Sorted
from .records import BASE62, SECOND, TIMELINE_END, TIMELINE_START, Rec, base62, fmt, micros, mix64, unbase62

PATTERN_LEN = 200
#: Conversions Klaviyo credits to a message (Placed Order, Fulfilled Order), and the kinds of events credited.
CONVERSION_KINDS = frozenset({"order"})
MESSAGE_KINDS = frozenset({"email", "sms", "push"})
#: One conversion in this many is attributed (to one or two earlier message events of its profile).
ATTRIBUTED_ONE_IN = 3
#: How far back (in events of the same profile) a conversion looks for the messages it is credited to.
ATTRIBUTION_REACH = 40
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_ID_STRIDE = 7919
_ID_WIDTH = 12
_ID_BASE = 4 * 62**11
#: An event id's last four base-62 digits; the seven before them change once in ~1,900 events.
_ID_LOW = 62**4
_PAIRS62 = tuple(a + b for a in BASE62 for b in BASE62)
_MASK64 = 0xFFFFFFFFFFFFFFFF


@dataclass(frozen=True)
class MetricDef:
    """A metric the generator emits events for, with its share of the event stream."""

    name: str
    integration: str
    weight: int
    kind: str


@dataclass
class EventQuery:
    """Constraints of an /api/events read that the store can answer without scanning."""

    min_t: int | None = None  # inclusive epoch micros
    max_t: int | None = None  # inclusive epoch micros
    metric_ids: frozenset[str] | None = None
    profile_ids: frozenset[str] | None = None


@dataclass
class _Extra:
    t: int
    idx: int
    metric: int
    profile: str
    props: dict[str, Any] | None = None


@dataclass
class Context:
    """Ids of the rest of the account, used to make event properties point at real things."""

    campaign_messages: list[tuple[str, str, str, str]] = field(default_factory=list)  # (msg, campaign, name, ch)
    flow_messages: list[tuple[str, str, str]] = field(default_factory=list)  # (message id, flow id, name)
    lists: list[tuple[str, str]] = field(default_factory=list)
    forms: list[str] = field(default_factory=list)
    products: list[tuple[str, str, float]] = field(default_factory=list)


class EventStore:
    """All events of the account; thread-safe for appends."""

    def __init__(
        self,
        count: int,
        seed: int,
        metric_ids: list[str],
        metric_defs: list[MetricDef],
        profile_ids: Sequence[str],
        now_micros: int,
        profile_index: Mapping[str, int] | None = None,
    ) -> None:
        self.n = count
        self.salt = mix64(seed * 7 + 3) & 0xFFFFFFFF
        self.metric_ids = metric_ids
        self.metric_defs = metric_defs
        self.metric_index = {mid: k for k, mid in enumerate(metric_ids)}
        self.profile_ids = profile_ids
        #: Position -> profile id without a Sequence's checks (the lazy account's ids are computed).
        self.profile_at: Callable[[int], str] = (
            profile_ids.item if isinstance(profile_ids, Sorted) else profile_ids.__getitem__
        )
        #: Position -> profile id where known (None: ask `profile_at`): the ids, or a lazy account's memo of them.
        self.known_profile_ids: Sequence[str | None] | None = profile_ids if isinstance(profile_ids, list) else None
        #: A lazy account passes its own (no dict of a million ids).
        self.profile_index: Mapping[str, int] = (
            profile_index if profile_index is not None else {pid: k for k, pid in enumerate(profile_ids)}
        )
        self.ctx = Context()
        self.t0 = micros(TIMELINE_START)
        self.span = micros(TIMELINE_END) - self.t0
        self._lock = threading.RLock()
        rng = random.Random(f"events:{seed}")
        total = sum(d.weight for d in metric_defs) or 1
        pattern: list[int] = []
        for k, d in enumerate(metric_defs):
            pattern += [k] * max(0, round(d.weight * PATTERN_LEN / total))
        pattern = (pattern + [0] * PATTERN_LEN)[:PATTERN_LEN]
        rng.shuffle(pattern)
        self.pattern = pattern
        self.offsets: dict[int, list[int]] = {}
        for pos, k in enumerate(pattern):
            self.offsets.setdefault(k, []).append(pos)
        nprof = max(1, len(profile_ids))
        a = rng.randrange(1, max(2, nprof))
        while math.gcd(a, nprof) != 1:
            a += 1
        self.pa, self.pb = a % nprof or 1, rng.randrange(nprof)
        self.pa_inv = pow(self.pa, -1, nprof) if nprof > 1 else 0
        self.nprof = nprof
        # Clusters of identical timestamps straddling page boundaries (a page of 1000 at index 1000, and
        # one in the middle of the stream) so "greater-than the bookmark" bugs lose data visibly.
        self.clusters: list[tuple[int, int]] = []
        if count > 1100:
            self.clusters.append((985, 1025))
        mid = (count // 2000) * 1000
        if mid > 2000:
            self.clusters.append((mid - 15, mid + 15))
        self._extras: list[_Extra] = []
        self._extra_keys: list[tuple[int, int]] = []
        self._extra_by_idx: dict[int, _Extra] = {}
        self.next_idx = count
        self.now_micros = now_micros
        self._tails: dict[tuple[int, ...], str] = {}
        self._reducers: list[tuple[int, int, int, int, int, int]] | None = None
        self._flow_variations: dict[str, list[str]] | None = None

    # ---- identity --------------------------------------------------------------------------------
    def event_id(self, idx: int, h: int | None = None) -> str:
        """Event id: fixed-width base-62, increasing with the index (``h`` = ``mix64(idx ^ salt)``)."""
        if h is None:
            h = mix64(idx ^ self.salt)
        # == base62(_ID_BASE + n, 12) while n < 62**11, i.e. for any realistic index; faster on small ints
        return "4" + base62(idx * _ID_STRIDE + (h % _ID_STRIDE), _ID_WIDTH - 1)

    def index_of(self, event_id: str) -> int | None:
        try:
            number = unbase62(event_id)
        except ValueError:
            return None
        idx = (number - _ID_BASE) // _ID_STRIDE
        if idx < 0 or self.event_id(idx) != event_id:
            return None
        if idx < self.n or idx in self._extra_by_idx:
            return idx
        return None

    def base_time(self, idx: int, h: int | None = None) -> int:
        """Datetime (epoch micros) of base event ``idx``: non-decreasing in ``idx``."""
        for start, end in self.clusters:
            if start <= idx < end:
                idx = start
                value = self.t0 + ((2 * idx) * self.span) // (2 * self.n)
                return value - value % SECOND
        if h is None:
            h = mix64(idx ^ self.salt)
        value = self.t0 + ((2 * idx + (h & 1)) * self.span) // (2 * self.n)
        value -= value % SECOND
        if (h >> 8) % 5 == 0:  # some events carry microseconds, as Klaviyo's do
            value += (h >> 16) % SECOND
        return value

    def time_of(self, idx: int) -> int:
        if idx < self.n:
            return self.base_time(idx)
        return self._extra_by_idx[idx].t

    def metric_of(self, idx: int) -> int:
        if idx < self.n:
            return self.pattern[idx % PATTERN_LEN]
        return self._extra_by_idx[idx].metric

    def profile_of(self, idx: int) -> str:
        if idx < self.n:
            return self.profile_ids[(self.pa * idx + self.pb) % self.nprof]
        return self._extra_by_idx[idx].profile

    def count(self) -> int:
        return self.n + len(self._extras)

    # ---- mutation --------------------------------------------------------------------------------
    def add_profile(self, profile_id: str) -> None:
        """A profile created after the build (it has no base events); a materialised account's only."""
        ids, index = self.profile_ids, self.profile_index
        if not isinstance(ids, list) or not isinstance(index, dict):
            raise TypeError("a lazy account's profiles are read-only")
        ids.append(profile_id)
        index[profile_id] = len(ids) - 1

    def append(
        self,
        at: int,
        metric_id: str | None = None,
        profile_id: str | None = None,
        props: dict[str, Any] | None = None,
    ) -> str:
        """Add one event at ``at`` (epoch micros; may be in the past or the future)."""
        with self._lock:
            idx = self.next_idx
            self.next_idx += 1
            metric = self.metric_index[metric_id] if metric_id else self.pattern[idx % PATTERN_LEN]
            profile = profile_id or self.profile_ids[(self.pa * idx + self.pb) % self.nprof]
            extra = _Extra(at, idx, metric, profile, props)
            pos = bisect.bisect_right(self._extra_keys, (at, idx))
            self._extra_keys.insert(pos, (at, idx))
            self._extras.insert(pos, extra)
            self._extra_by_idx[idx] = extra
            return self.event_id(idx)

    # ---- queries ---------------------------------------------------------------------------------
    def _base_key(self, idx: int) -> tuple[int, int]:
        return (self.base_time(idx), idx)

    def _base_bounds(self, query: EventQuery) -> tuple[int, int]:
        lo, hi = 0, self.n
        if query.min_t is not None:
            lo = bisect.bisect_left(range(self.n), query.min_t, key=self.base_time)
        if query.max_t is not None:
            hi = bisect.bisect_right(range(self.n), query.max_t, key=self.base_time)
        return lo, max(lo, hi)

    def _profile_residues(self, profile_ids: frozenset[str]) -> list[int] | None:
        residues = []
        for pid in profile_ids:
            k = self.profile_index.get(pid)
            if k is not None and k < self.nprof:  # profiles added later have no base events
                residues.append((self.pa_inv * (k - self.pb)) % self.nprof if self.nprof > 1 else 0)
        return sorted(residues)

    def _walk(self, lo: int, hi: int, desc: bool, query: EventQuery) -> Iterator[int]:
        """Base indices in [lo, hi) that satisfy the metric/profile constraints, in order."""
        if lo >= hi:
            return
        metrics = None
        if query.metric_ids is not None:
            metrics = {self.metric_index[m] for m in query.metric_ids if m in self.metric_index}
            if not metrics:
                return
        if query.profile_ids is not None:
            residues = self._profile_residues(query.profile_ids) or []
            step = self.nprof
            walks = [_progression(lo, hi, r, step, desc) for r in residues]
            merged: Iterator[int] = (
                heapq.merge(*walks, reverse=desc) if len(walks) > 1 else iter(walks[0] if walks else [])
            )
            for idx in merged:
                if metrics is None or self.pattern[idx % PATTERN_LEN] in metrics:
                    yield idx
            return
        if metrics is not None:
            offsets = sorted(o for m in metrics for o in self.offsets.get(m, ()))
            if not offsets:
                return
            yield from _pattern_walk(lo, hi, offsets, PATTERN_LEN, desc)
            return
        yield from (range(hi - 1, lo - 1, -1) if desc else range(lo, hi))

    def _extra_walk(self, query: EventQuery, desc: bool) -> list[tuple[int, int]]:
        metrics = None
        if query.metric_ids is not None:
            metrics = {self.metric_index.get(m, -1) for m in query.metric_ids}
        out = []
        for e in self._extras:
            if query.min_t is not None and e.t < query.min_t:
                continue
            if query.max_t is not None and e.t > query.max_t:
                continue
            if metrics is not None and e.metric not in metrics:
                continue
            if query.profile_ids is not None and e.profile not in query.profile_ids:
                continue
            out.append((e.t, e.idx))
        if desc:
            out.reverse()
        return out

    def iter_keys(
        self, query: EventQuery, desc: bool = False, after: tuple[int, int] | None = None
    ) -> Iterator[tuple[int, int]]:
        """(datetime, index) keys matching ``query`` in sort order, strictly after the ``after`` key."""
        with self._lock:
            extras = self._extra_walk(query, desc)
        lo, hi = self._base_bounds(query)
        if after is not None:
            cut = bisect.bisect_right(range(self.n), after, key=self._base_key)
            if desc:
                hi = min(hi, bisect.bisect_left(range(self.n), after, key=self._base_key))
            else:
                lo = max(lo, cut)
            extras = [k for k in extras if (k < after if desc else k > after)]
        base = ((self.base_time(i), i) for i in self._walk(lo, hi, desc, query))
        yield from heapq.merge(base, extras, reverse=desc)

    def page(
        self,
        query: EventQuery,
        limit: int,
        desc: bool = False,
        after: tuple[int, int] | None = None,
        plain: bool = True,
    ) -> Sequence[tuple[int, int]]:
        """Up to ``limit`` keys after ``after``: with ``plain``, consecutive base events as a range when nothing
        else is asked of them (no metric or profile filter, no added event among them), else walked and merged."""
        plain_keys = self._plain_page(query, limit, desc, after) if plain else None
        if plain_keys is not None:
            return plain_keys
        return list(itertools.islice(self.iter_keys(query, desc, after), limit))

    def _plain_page(self, query: EventQuery, limit: int, desc: bool, after: tuple[int, int] | None) -> IndexKeys | None:
        if query.metric_ids is not None or query.profile_ids is not None:
            return None
        with self._lock:
            extras = self._extra_walk(query, desc)
        lo, hi = self._base_bounds(query)
        if after is not None:
            if desc:
                hi = min(hi, bisect.bisect_left(range(self.n), after, key=self._base_key))
            else:
                lo = max(lo, bisect.bisect_right(range(self.n), after, key=self._base_key))
            extras = [k for k in extras if (k < after if desc else k > after)]
        indices = range(hi - 1, max(lo, hi - limit) - 1, -1) if desc else range(lo, min(hi, lo + limit))
        keys = IndexKeys(self, indices)
        if extras:
            if len(indices) < limit or not indices:
                return None  # added events come after the base ones left: merged
            last = keys[-1]
            if (extras[0] < last) if not desc else (extras[0] > last):
                return None
        return keys

    def all_ids(self) -> set[str]:
        with self._lock:
            extra = [e.idx for e in self._extras]
        return {self.event_id(i) for i in itertools.chain(range(self.n), extra)}

    # ---- materialisation -------------------------------------------------------------------------
    def _parts(self, idx: int) -> tuple[str, int, int, str, int, dict[str, Any] | None, str]:
        """(id, datetime micros, metric index, profile id, property hash, stored properties, uuid)."""
        h = mix64(idx ^ self.salt)
        h1 = mix64(h)
        props: dict[str, Any] | None = None
        if idx < self.n:
            t = self.base_time(idx, h)
            metric = self.pattern[idx % PATTERN_LEN]
            profile = self.profile_ids[(self.pa * idx + self.pb) % self.nprof]
        else:
            extra = self._extra_by_idx[idx]
            t, metric, profile, props = extra.t, extra.metric, extra.profile, extra.props
        x = (h1 << 64) | (h * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF)
        x = (x & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x1000 << 64) | (0x8000 << 48)  # RFC 4122 version 1
        s = f"{x:032x}"
        event_uuid = f"{s[:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:]}"
        return self.event_id(idx, h), t, metric, profile, h1, props, event_uuid

    def record(self, idx: int) -> Rec:
        """The event as a record (attributes + relationship ids)."""
        eid, t, metric, profile, h1, props, event_uuid = self._parts(idx)
        if props is None:
            props = self.properties(idx, metric, h1)
        attrs = {
            "timestamp": t // SECOND,
            "event_properties": props,
            "datetime": fmt(t, keep_micros=True),
            "uuid": event_uuid,
        }
        rels = {"metric": self.metric_ids[metric], "profile": profile, "attributions": self.attribution_ids(idx)}
        return Rec("event", eid, attrs, rels)

    # ---- attributions ----------------------------------------------------------------------------
    def attributions(self, idx: int) -> list[Rec]:
        """The attributions of event ``idx`` (``include=attributions``): a share of base conversion events
        is credited to one or two earlier message events of the same profile, and to the campaign or flow
        message those events name in their properties."""
        if idx >= self.n or self.metric_defs[self.pattern[idx % PATTERN_LEN]].kind not in CONVERSION_KINDS:
            return []
        h = mix64(idx ^ self.salt ^ 0xA77B)
        if h % ATTRIBUTED_ONE_IN:
            return []
        wanted = 1 + (h >> 8) % 2
        out: list[Rec] = []
        earlier = idx - self.nprof  # the same profile's previous event (profiles step by nprof)
        for _ in range(ATTRIBUTION_REACH):
            if earlier < 0 or len(out) == wanted:
                break
            links = self._credited(earlier, h >> (16 + 8 * len(out)))
            if links is not None:
                k = len(out)
                aid = f"{mix64((idx << 2 | k) ^ self.salt):016x}{idx:014x}{k:02x}"
                out.append(Rec("attribution", aid, {}, {"event": self.event_id(idx), **links}))
            earlier -= self.nprof
        return out

    def credited(self, idx: int) -> tuple[str, int] | None:
        """(message id, the touch's datetime) of the one attribution a conversion's revenue goes to: of
        several, the one whose message event is the latest (then the greatest attribution id), as the
        warehouse models choose, so no revenue counts twice."""
        best: tuple[int, str, str] | None = None
        for rec in self.attributions(idx):
            touch = self.index_of(str(rec.rels["attributed-event"]))
            message = rec.rels.get("campaign-message") or rec.rels.get("flow-message")
            if touch is None or not message:
                continue
            candidate = (self.time_of(touch), rec.id, str(message))
            if best is None or candidate[:2] > best[:2]:
                best = candidate
        return None if best is None else (best[2], best[0])

    def who(self, idx: int) -> int | str:
        """The event's profile as a cheap key for counting distinct profiles (its position where it has one)."""
        if idx < self.n:
            return (self.pa * idx + self.pb) % self.nprof
        profile = self._extra_by_idx[idx].profile
        return self.profile_index.get(profile, profile)

    def report_facts(self, idx: int) -> tuple[str | None, str | None, float | None]:
        """(message id, form id, revenue value) the event's properties name, without building them."""
        props = None if idx < self.n else self._extra_by_idx[idx].props
        if props is not None:
            value = props.get("$value")
            number = float(value) if isinstance(value, (int, float)) else None
            message, form = props.get("$message"), props.get("form_id")
            return (str(message) if message else None, str(form) if form else None, number)
        metric = self.metric_of(idx)
        kind = self.metric_defs[metric].kind
        h1 = mix64(mix64(idx ^ self.salt))
        if kind in MESSAGE_KINDS:
            found = self._message(_choices(kind, h1)[0])
            return (found[1] if found else None, None, None)
        if kind == "form" and self.ctx.forms:
            return (None, self.ctx.forms[_choices(kind, h1)[0] % len(self.ctx.forms)], None)
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
        metric = self.pattern[idx % PATTERN_LEN]
        kind = self.metric_defs[metric].kind
        if kind not in MESSAGE_KINDS:
            return None
        message = self._message(_choices(kind, mix64(mix64(idx ^ self.salt)))[0])
        if message is None:
            return None
        origin, message_id, parent_id, _name = message
        links = {"attributed-event": self.event_id(idx)}
        if origin == "campaign":
            return {**links, "campaign": parent_id, "campaign-message": message_id}
        variations = self.flow_variations().get(parent_id) or [message_id]
        variation = variations[h % len(variations)]
        return {**links, "flow": parent_id, "flow-message": message_id, "flow-message-variation": variation}

    def flow_variations(self) -> dict[str, list[str]]:
        """Flow id -> its messages (the variations an attributed flow message may have been sent as)."""
        if self._flow_variations is None:
            by_flow: dict[str, list[str]] = {}
            for message_id, flow_id, _name in self.ctx.flow_messages:
                by_flow.setdefault(flow_id, []).append(message_id)
            self._flow_variations = by_flow
        return self._flow_variations

    def _message(self, choice: int) -> tuple[str, str, str, str] | None:
        """The message a message event's properties name: (origin, message id, flow or campaign id, name)."""
        ctx = self.ctx
        messages = len(ctx.flow_messages) + len(ctx.campaign_messages)
        if not messages:
            return None
        pick = choice % messages
        if pick < len(ctx.flow_messages):
            msg, flow, name = ctx.flow_messages[pick]
            return "flow", msg, flow, name
        msg, campaign, name, _channel = ctx.campaign_messages[pick - len(ctx.flow_messages)]
        return "campaign", msg, campaign, name

    def render_json(self, idx: int, base: str, attributions: bool) -> str:
        """The event's JSON:API object as JSON text, built directly (the hot path of big syncs).

        Same output as the generic renderer for the spec's event shape; ``base`` must be JSON-safe.
        """
        eid, t, metric, profile, h1, props, event_uuid = self._parts(idx)
        props_json = self.properties_json(idx, metric, h1) if props is None else _dumps(props)
        link = f"{base}/api/events/{eid}"
        data = ""
        if attributions:
            refs = ",".join(f'{{"type":"attribution","id":"{a}"}}' for a in self.attribution_ids(idx))
            data = f'"data":[{refs}],'
        return (
            f'{{"type":"event","id":"{eid}","attributes":{{"timestamp":{t // SECOND},"event_properties":'
            f'{props_json},"datetime":"{fmt(t, True)}","uuid":"{event_uuid}"}},"relationships":{{'
            f'"profile":{{"data":{{"type":"profile","id":"{profile}"}},"links":{{"self":"{link}/relationships/'
            f'profile/","related":"{link}/profile/"}}}},"metric":{{"data":{{"type":"metric","id":'
            f'"{self.metric_ids[metric]}"}},"links":{{"self":"{link}/relationships/metric/","related":'
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
        indices = self.indices_of(keys)
        if not indices:
            return ""
        n, salt, t0, span, n2 = self.n, self.salt, self.t0, self.span, 2 * self.n
        pattern, metric_ids, profile_at, tails = self.pattern, self.metric_ids, self.profile_at, self._tails
        reducers = self.tail_reducers()
        pa, pb, nprof, known = self.pa, self.pb, self.nprof, self.known_profile_ids
        #: Per metric: 0 no price, 1 a price, 2 a price and an order id.
        priced = [2 if d.kind in ("order", "checkout") else 1 if d.kind == "product" else 0 for d in self.metric_defs]
        first, last = min(indices[0], indices[-1]), max(indices[0], indices[-1])
        clustered = any(start <= last and first < end for start, end in self.clusters)
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
            top, low = divmod(idx * _ID_STRIDE + h % _ID_STRIDE, _ID_LOW)
            if top != high:
                high, high_text = top, "4" + base62(top, _ID_WIDTH - 5)
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
        kind = self.metric_defs[metric].kind
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
        if self._reducers is None:
            ctx = self.ctx
            messages = len(ctx.flow_messages) + len(ctx.campaign_messages)
            picks = {"site": 50, "list": len(ctx.lists), "form": len(ctx.forms)}
            reducers = []
            for mdef in self.metric_defs:
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
        mdef = self.metric_defs[metric]
        kind, ctx = mdef.kind, self.ctx
        props: dict[str, Any] = {}
        if kind in MESSAGE_KINDS:
            messages = len(ctx.flow_messages) + len(ctx.campaign_messages)
            pick = choice[0] % messages if messages else 0
            message = self._message(choice[0])
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


class IndexKeys(Sequence[tuple[int, int]]):
    """(datetime, index) keys of base events whose indices are a range: datetimes computed only when asked."""

    def __init__(self, store: EventStore, indices: range) -> None:
        self.store, self.indices = store, indices

    def __len__(self) -> int:
        return len(self.indices)

    @overload
    def __getitem__(self, index: int) -> tuple[int, int]: ...
    @overload
    def __getitem__(self, index: slice) -> IndexKeys: ...
    def __getitem__(self, index: int | slice) -> tuple[int, int] | IndexKeys:
        if isinstance(index, slice):
            return IndexKeys(self.store, self.indices[index])
        idx = self.indices[index]
        return (self.store.base_time(idx), idx)


def _choices(kind: str, h: int) -> tuple[int, ...]:
    """The few hash-derived choices an event's property tail depends on."""
    if kind in ("email", "sms", "push"):
        return ((h >> 5) % 4096, (h >> 17) % 4, (h >> 21) % 8)
    if kind in ("order", "product", "checkout"):
        return ((h >> 7) % 4096, (h >> 13) % 3, (h >> 19) % 4)
    return ((h >> 9) % 4096,)


def _progression(lo: int, hi: int, residue: int, step: int, desc: bool) -> Iterator[int]:
    if step <= 0:
        return iter(())
    first = lo + ((residue - lo) % step)
    if first >= hi:
        return iter(())
    if not desc:
        return iter(range(first, hi, step))
    last = first + ((hi - 1 - first) // step) * step
    return iter(range(last, lo - 1, -step))


def _pattern_walk(lo: int, hi: int, offsets: list[int], period: int, desc: bool) -> Iterator[int]:
    if not desc:
        block = lo - lo % period
        start = bisect.bisect_left(offsets, lo - block)
        while block < hi:
            for off in offsets[start:]:
                idx = block + off
                if idx >= hi:
                    return
                yield idx
            block += period
            start = 0
        return
    block = (hi - 1) - (hi - 1) % period
    stop = bisect.bisect_right(offsets, (hi - 1) - block)
    while block + period > lo:
        for off in reversed(offsets[:stop]):
            idx = block + off
            if idx < lo:
                return
            yield idx
        block -= period
        stop = len(offsets)
