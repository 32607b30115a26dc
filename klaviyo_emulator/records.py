"""Small building blocks of the generated account: records, ids and Klaviyo-style timestamps."""

from __future__ import annotations

import functools
import random
import time
from datetime import datetime, timedelta, timezone
from typing import Any

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TIMELINE_START = datetime(2023, 1, 1, tzinfo=UTC)
TIMELINE_END = datetime(2026, 11, 1, tzinfo=UTC)
SECOND = 1_000_000
DAY = 86_400 * SECOND

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class Rec:
    """One stored resource: attributes as the API returns them, relationship ids, hidden extras.

    ``rels`` maps a relationship name to an id (to-one) or a list of ids (to-many). ``extra`` holds
    values some filters use that are not attributes (e.g. a campaign's channel).
    """

    __slots__ = ("attrs", "extra", "id", "rels", "type")

    def __init__(
        self,
        rtype: str,
        rid: str,
        attrs: dict[str, Any],
        rels: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.type = rtype
        self.id = rid
        self.attrs = attrs
        self.rels: dict[str, Any] = rels or {}
        self.extra: dict[str, Any] = extra or {}

    def __repr__(self) -> str:
        return f"Rec({self.type}:{self.id})"

    def __lt__(self, other: Rec) -> bool:
        return (self.type, self.id) < (other.type, other.id)


def micros(value: datetime) -> int:
    """Epoch microseconds of an aware datetime (naive = UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - EPOCH
    return (delta.days * 86400 + delta.seconds) * SECOND + delta.microseconds


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


@functools.lru_cache(maxsize=100_000)
def _day_prefix(day: int) -> str:
    """``YYYY-MM-DDT`` of a day since the epoch (a few thousand days in any account: worked out once each)."""
    return time.strftime("%Y-%m-%dT", time.gmtime(day * 86_400))


def fmt(value: int, keep_micros: bool = False) -> str:
    """Klaviyo's timestamp text: ``2024-05-01T12:00:00+00:00`` (optionally with microseconds)."""
    sec, frac = divmod(value, SECOND)
    day, rest = divmod(sec, 86_400)
    prefix = _day_prefix(day)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    if keep_micros and frac:
        return f"{prefix}{hour:02d}:{minute:02d}:{second:02d}.{frac:06d}+00:00"
    return f"{prefix}{hour:02d}:{minute:02d}:{second:02d}+00:00"


def ulid(at_micros: int, rng: random.Random) -> str:
    """A ULID (26 Crockford base-32 chars) whose prefix sorts by time, like profile/campaign ids."""
    number = ((at_micros // 1000) << 80) | rng.getrandbits(80)
    out = []
    for _ in range(26):
        out.append(_CROCKFORD[number & 31])
        number >>= 5
    return "".join(reversed(out))


def short_id(rng: random.Random, length: int = 6) -> str:
    """Klaviyo's short mixed-case ids (lists, segments, metrics, flows, templates)."""
    return "".join(rng.choice(BASE62) for _ in range(length))


_PAIRS = [a + b for a in BASE62 for b in BASE62]


def base62(number: int, width: int) -> str:
    """Fixed-width base-62: string order equals numeric order (used for event ids)."""
    out = []
    for _ in range(width // 2):
        number, rem = divmod(number, 3844)
        out.append(_PAIRS[rem])
    if width % 2:
        out.append(BASE62[number % 62])
    return "".join(reversed(out))


def unbase62(text: str) -> int:
    number = 0
    for char in text:
        number = number * 62 + BASE62.index(char)
    return number


def mix64(value: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread hash of an integer (lazy event fields)."""
    value = (value + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return value ^ (value >> 31)
