"""What an account is generated from: its size, the metrics it tracks, and the context its builders share.

The builders (klaviyo_emulator/build_*.py) fill one :class:`Blueprint` in a fixed order; each leaves the ids
the next needs (lists before campaigns, templates before flows), so the account stays a function of
(size, seed, now).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .events import MetricDef
from .fake import default_attributes
from .records import SECOND, TIMELINE_END, TIMELINE_START, Rec, micros


@dataclass(frozen=True)
class SizeSpec:
    """How many of each resource an account size has."""

    profiles: int
    events: int
    lists: int
    segments: int
    flows: int
    campaigns: int
    templates: int
    extra_metrics: int
    scale: int
    #: Profiles and memberships computed from their index (klaviyo_emulator/lazy.py): read-only, starts in seconds.
    lazy: bool = False


SIZES: dict[str, SizeSpec] = {
    # tiny keeps >100 profiles: one list must have more than one page of 100 members.
    "tiny": SizeSpec(120, 2_500, 12, 12, 6, 15, 12, 0, 1),
    "demo": SizeSpec(500, 20_000, 24, 20, 15, 60, 30, 0, 2),
    "medium": SizeSpec(5_000, 100_000, 50, 50, 50, 200, 60, 210, 4),
    "large": SizeSpec(5_000, 1_000_000, 50, 50, 50, 200, 60, 210, 4),
}

METRICS: list[MetricDef] = [
    MetricDef("Received Email", "klaviyo", 28, "email"),
    MetricDef("Opened Email", "klaviyo", 18, "email"),
    MetricDef("Clicked Email", "klaviyo", 7, "email"),
    MetricDef("Bounced Email", "klaviyo", 1, "email"),
    MetricDef("Unsubscribed from Email Marketing", "klaviyo", 1, "email"),
    MetricDef("Marked Email as Spam", "klaviyo", 1, "email"),
    MetricDef("Received SMS", "klaviyo", 4, "sms"),
    MetricDef("Clicked SMS", "klaviyo", 1, "sms"),
    MetricDef("Received Push", "klaviyo", 2, "push"),
    MetricDef("Subscribed to List", "klaviyo", 2, "list"),
    MetricDef("Viewed Form", "klaviyo", 2, "form"),
    MetricDef("Submitted Form", "klaviyo", 1, "form"),
    MetricDef("Active on Site", "api", 12, "site"),
    MetricDef("Viewed Product", "shopify", 10, "product"),
    MetricDef("Started Checkout", "shopify", 3, "checkout"),
    MetricDef("Placed Order", "shopify", 4, "order"),
    MetricDef("Ordered Product", "shopify", 5, "product"),
    MetricDef("Fulfilled Order", "shopify", 2, "order"),
]

INTEGRATIONS: dict[str, dict[str, Any]] = {
    "klaviyo": {
        "object": "integration",
        "id": "0rG4eQ",
        "key": "klaviyo",
        "name": "Klaviyo",
        "category": "Internal",
    },
    "shopify": {
        "object": "integration",
        "id": "0eMvjm",
        "key": "shopify",
        "name": "Shopify",
        "category": "eCommerce",
    },
    "api": {"object": "integration", "id": "7FtS4J", "key": "api", "name": "API", "category": "API"},
}


class Blueprint:
    """The stores being filled and the ids the builders hand each other while an account is generated."""

    def __init__(
        self, size: str, seed: int, spec_size: SizeSpec, store: dict[str, dict[str, Rec]], members: dict[str, Any]
    ) -> None:
        self.size = size
        self.seed = seed
        self.spec_size = spec_size
        self.t0 = micros(TIMELINE_START)
        self.t1 = micros(TIMELINE_END)
        self.store = store
        self.members = members
        self.account_id = ""
        self.list_ids: list[str] = []
        self.segment_ids: list[str] = []
        self.profile_order: Sequence[str] = []
        #: profile id -> created (epoch micros); none on a lazy account (its groups are lazy too).
        self.pcreated: dict[str, int] = {}
        self.metric_ids: list[str] = []
        self.template_ids: list[str] = []
        self.flow_messages: list[tuple[str, str, str]] = []
        self.campaign_messages: list[tuple[str, str, str, str]] = []

    def rng(self, section: str) -> random.Random:
        """One section's random stream: adding a section never shifts another's values."""
        return random.Random(f"{section}:{self.size}:{self.seed}")

    def put(self, rec: Rec) -> Rec:
        self.store.setdefault(rec.type, {})[rec.id] = rec
        return rec

    def add(self, rtype: str, rid: str, values: dict[str, Any], rels: dict[str, Any] | None = None) -> Rec:
        """A new record: the spec's placeholders for its attributes, overridden by ``values``."""
        return self.put(Rec(rtype, rid, attrs_of(rtype, values), rels))

    def stamp(self, rng: random.Random, lo: int | None = None, hi: int | None = None, micro: bool = False) -> int:
        """A time in [lo, hi) (the timeline by default), whole seconds unless ``micro``."""
        lo = self.t0 if lo is None else lo
        hi = self.t1 if hi is None else hi
        value = rng.randrange(lo, max(lo + 1, hi))
        return value if micro else value - value % SECOND


def attrs_of(rtype: str, values: dict[str, Any]) -> dict[str, Any]:
    """Spec placeholders for every attribute of ``rtype``, overridden by ``values``."""
    out = dict(default_attributes(rtype))
    out.update(values)
    return out


def uuid_from(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
