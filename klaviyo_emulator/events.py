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
import math
import random
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, overload

from .lazy import Sorted
from .records import SECOND, TIMELINE_END, TIMELINE_START, Rec, base62, micros, mix64, unbase62

PATTERN_LEN = 200
#: Conversions Klaviyo credits to a message (Placed Order, Fulfilled Order), and the kinds of events credited.
CONVERSION_KINDS = frozenset({"order"})
MESSAGE_KINDS = frozenset({"email", "sms", "push"})
#: One conversion in this many is attributed (to one or two earlier message events of its profile).
ATTRIBUTED_ONE_IN = 3
#: How far back (in events of the same profile) a conversion looks for the messages it is credited to.
ATTRIBUTION_REACH = 40
ID_STRIDE = 7919
ID_WIDTH = 12
_ID_BASE = 4 * 62**11


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


class EventRecords(Protocol):
    """What builds an event's record from its index (klaviyo_emulator/event_pages.py's EventPages)."""

    def record(self, idx: int) -> Rec: ...


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
        #: Builds `record` (set by the account once its pages exist: they render from this store).
        self.records: EventRecords | None = None
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

    # ---- identity --------------------------------------------------------------------------------
    def event_id(self, idx: int, h: int | None = None) -> str:
        """Event id: fixed-width base-62, increasing with the index (``h`` = ``mix64(idx ^ salt)``)."""
        if h is None:
            h = mix64(idx ^ self.salt)
        # == base62(_ID_BASE + n, 12) while n < 62**11, i.e. for any realistic index; faster on small ints
        return "4" + base62(idx * ID_STRIDE + (h % ID_STRIDE), ID_WIDTH - 1)

    def index_of(self, event_id: str) -> int | None:
        try:
            number = unbase62(event_id)
        except ValueError:
            return None
        idx = (number - _ID_BASE) // ID_STRIDE
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

    def record(self, idx: int) -> Rec:
        """The event as a record (attributes + relationship ids)."""
        if self.records is None:
            raise RuntimeError("the event store has no pages to build records with")
        return self.records.record(idx)

    def all_ids(self) -> set[str]:
        with self._lock:
            extra = [e.idx for e in self._extras]
        return {self.event_id(i) for i in itertools.chain(range(self.n), extra)}

    def who(self, idx: int) -> int | str:
        """The event's profile as a cheap key for counting distinct profiles (its position where it has one)."""
        if idx < self.n:
            return (self.pa * idx + self.pb) % self.nprof
        profile = self._extra_by_idx[idx].profile
        return self.profile_index.get(profile, profile)


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
