"""Profiles and group memberships computed from their index, so a million-profile account starts in seconds.

Materialised accounts hold every profile as a record and every membership in a dict; an account of
1,000,000 profiles would take minutes and gigabytes to build. Here profile ``p`` (``0 <= p < n``) is its
position in ``(updated, id)`` order: ``updated`` strictly increases with ``p``, so a range of ``updated``
is a range of positions found by bisection; its id encodes ``p``, so looking one up is a decode. Member
``j`` of a group is profile ``(a*j + b) mod n`` and joined at a time strictly increasing with ``j``, so a
group's members sorted by ``joined_group_at`` are positions too. Both are read-only (no profile is added
or touched): the benchmark's account never changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, overload

from .records import DAY, SECOND, Rec, mix64

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(_CROCKFORD)}
_LOW = (1 << 40) - 1


_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits at a time: ids are on every event
#: 15 bits at a time: a profile id is 10 + 16 digits, each half three or five triples and one digit.
_TRIPLES = tuple(a + b for a in _CROCKFORD for b in _PAIRS)


def _profile_id(created_ms: int, low: int) -> str:
    """Crockford base-32 digits: 10 of `created_ms`, 16 of `low` (an id for every event of a page)."""
    t, c = _TRIPLES, _CROCKFORD
    return (
        f"{t[created_ms >> 35 & 32767]}{t[created_ms >> 20 & 32767]}{t[created_ms >> 5 & 32767]}{c[created_ms & 31]}"
        f"{t[low >> 65 & 32767]}{t[low >> 50 & 32767]}{t[low >> 35 & 32767]}{t[low >> 20 & 32767]}"
        f"{t[low >> 5 & 32767]}{c[low & 31]}"
    )


class Sorted(Sequence[Any]):
    """Positions ``[lo, hi)`` of a lazily indexed collection seen through ``item`` (a sort key or a record)."""

    def __init__(self, item: Callable[[int], Any], lo: int, hi: int) -> None:
        self._item, self.lo, self.hi = item, lo, max(lo, hi)

    def __len__(self) -> int:
        return self.hi - self.lo

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._item(self.lo + index)

    def item(self, index: int) -> Any:
        """``self[index]`` for ``0 <= index < len(self)``, without the checks (per-event hot paths)."""
        return self._item(self.lo + index)

    def window(self, lo: int, hi: int) -> Sorted:
        """Positions ``[lo, hi)`` of this view (relative), still lazy."""
        return Sorted(self._item, self.lo + lo, self.lo + min(hi, len(self)))


class LazyProfiles(Mapping[str, Rec]):
    """Profile id -> record, computed from the position; iterates in ``(updated, id)`` order."""

    #: The field whose order positions follow (the API serves other orders from the materialised records).
    sort_field = "updated"

    def __init__(self, n: int, salt: int, lo: int, hi: int, attrs: Callable[[int, int, int], dict[str, Any]]) -> None:
        self.n, self.salt, self._attrs = n, salt, attrs
        self.lo, self.step = lo, max(2 * SECOND, (hi - lo) // max(1, n))
        self.push_tokens: dict[str, list[str]] = {}
        #: Position -> id, filled as ids are asked for: every event names its profile, so a full read of a
        #: big account's events asks for each id about ten times.
        self.known_ids: list[str | None] = [None] * n
        #: Set once events exist: position -> last_event_date (or None).
        self.last_event: Callable[[int], str | None] = lambda p: None

    def _hash(self, p: int) -> int:
        return mix64(p ^ self.salt)

    def updated(self, p: int, h: int | None = None) -> int:
        """Epoch micros, strictly increasing with ``p``; a third carry microseconds, as Klaviyo's do
        (``h``: ``p``'s hash, when the caller has it)."""
        if h is None:
            h = self._hash(p)
        step = self.step
        value = self.lo + p * step + (h % (step // SECOND)) * SECOND // 2
        value -= value % SECOND
        return value + (h >> 20) % SECOND if p % 3 == 1 else value

    def created(self, p: int, h: int | None = None) -> int:
        if h is None:
            h = self._hash(p)
        value = max(self.lo - 30 * DAY, self.updated(p, h) - (h >> 8) % (400 * DAY))
        return value - value % SECOND

    def id_of(self, p: int) -> str:
        known = self.known_ids[p]
        if known is None:
            known = self.known_ids[p] = self._new_id(p)
        return known

    def fill_ids(self) -> None:
        """Every id, once, before the account is served (the benchmark's full-size runs: about 75 MB and six
        seconds for a million): a full read of the events names each profile about ten times, and an events
        page's first render would otherwise work out a thousand new ids (a third of its CPU)."""
        known, new_id = self.known_ids, self._new_id
        for p in range(self.n):
            if known[p] is None:
                known[p] = new_id(p)

    def _new_id(self, p: int) -> str:
        """One hash for the whole id (it names every event's profile)."""
        h = self._hash(p)
        return _profile_id(self.created(p, h) // 1000, ((h & _LOW) << 40) | p)

    def index_of(self, profile_id: str) -> int | None:
        if len(profile_id) != 26:
            return None
        try:
            number = 0
            for char in profile_id[10:]:
                number = number * 32 + _DECODE[char]
        except KeyError:
            return None
        p = number & _LOW
        return p if p < self.n and self.id_of(p) == profile_id else None

    def record(self, p: int) -> Rec:
        pid = self.id_of(p)
        attrs = self._attrs(p, self.created(p), self.updated(p))
        attrs["last_event_date"] = self.last_event(p)
        return Rec(
            "profile", pid, attrs, {"lists": [], "segments": [], "push-tokens": self.push_tokens.setdefault(pid, [])}
        )

    def key(self, p: int) -> tuple[int, int, str]:
        """The sort key the generic collection gives a profile sorted by ``updated``."""
        return (1, self.updated(p), self.id_of(p))

    @property
    def count(self) -> int:
        return self.n

    def ids(self) -> Sorted:
        return Sorted(self.id_of, 0, self.n)

    def __getitem__(self, profile_id: str) -> Rec:
        p = self.index_of(profile_id)
        if p is None:
            raise KeyError(profile_id)
        return self.record(p)

    def __iter__(self) -> Iterator[str]:
        return (self.id_of(p) for p in range(self.n))

    def __len__(self) -> int:
        return self.n

    def __contains__(self, profile_id: object) -> bool:
        return isinstance(profile_id, str) and self.index_of(profile_id) is not None


class LazyMembers(Mapping[str, int]):
    """One group's members: profile id -> joined_group_at (epoch micros, whole seconds), in joining order."""

    sort_field = "joined_group_at"

    def __init__(self, profiles: LazyProfiles, count: int, seed: int, start: int, end: int) -> None:
        n = profiles.n
        self.profiles, self.m = profiles, min(count, n)
        a = 1 + mix64(seed) % max(1, n - 1)
        while _gcd(a, n) != 1:
            a += 1
        self.a, self.b = a % n if n > 1 else 0, mix64(seed + 1) % max(1, n)
        self.a_inv = pow(self.a, -1, n) if n > 1 else 0
        self.start = start - start % SECOND  # whole seconds, as Klaviyo serves joined_group_at
        self.step = max(1, (end - start) // max(1, self.m) // SECOND) * SECOND

    def position(self, j: int) -> int:
        """The profile position of member ``j``."""
        return (self.a * j + self.b) % self.profiles.n

    def joined(self, j: int) -> int:
        return self.start + j * self.step

    def member(self, p: int) -> int | None:
        """Member index of profile position ``p`` (None: not a member)."""
        j = (self.a_inv * (p - self.b)) % self.profiles.n if self.profiles.n > 1 else 0
        return j if j < self.m else None

    def key(self, j: int) -> tuple[int, int, str]:
        """The sort key the generic collection gives a member sorted by ``joined_group_at``."""
        return (1, self.joined(j), self.profiles.id_of(self.position(j)))

    @property
    def count(self) -> int:
        return self.m

    def record(self, j: int) -> Rec:
        return self.profiles.record(self.position(j))

    def __getitem__(self, profile_id: str) -> int:
        p = self.profiles.index_of(profile_id)
        j = None if p is None else self.member(p)
        if j is None:
            raise KeyError(profile_id)
        return self.joined(j)

    def __iter__(self) -> Iterator[str]:
        return (self.profiles.id_of(self.position(j)) for j in range(self.m))

    def __len__(self) -> int:
        return self.m

    def __contains__(self, profile_id: object) -> bool:
        if not isinstance(profile_id, str):
            return False
        p = self.profiles.index_of(profile_id)
        return p is not None and self.member(p) is not None


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


class ProfilePositions(Mapping[str, int]):
    """Profile id -> position (what the event store's ``profile_index`` is), without a million-entry dict."""

    def __init__(self, profiles: LazyProfiles) -> None:
        self.profiles = profiles

    def __getitem__(self, profile_id: str) -> int:
        p = self.profiles.index_of(profile_id)
        if p is None:
            raise KeyError(profile_id)
        return p

    def __iter__(self) -> Iterator[str]:
        return iter(self.profiles)

    def __len__(self) -> int:
        return self.profiles.n
