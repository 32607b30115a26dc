"""The generated Klaviyo account: deterministic from (size, seed), with mutation helpers for tests.

Everything except events is held in memory as :class:`~klaviyo_emulator.records.Rec` objects keyed by
type and id; events are computed on demand by :class:`~klaviyo_emulator.events.EventStore`. The only
input that is not (size, seed) is the wall clock at build time, which dates the three future events.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .events import EventStore, MetricDef
from .fake import default_attributes, fake_value
from .lazy import LazyMembers, LazyProfiles, ProfilePositions
from .records import (
    DAY,
    SECOND,
    TIMELINE_END,
    TIMELINE_START,
    UTC,
    Rec,
    fmt,
    micros,
    short_id,
    ulid,
)
from .spec import get_spec
from .undocumented import click_tracking, legacy_flow_action


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

FIRST = [
    "Ava",
    "Liam",
    "Mia",
    "Noah",
    "Zoe",
    "Omar",
    "Ines",
    "Kai",
    "Lena",
    "Ravi",
    "Sofia",
    "Tom",
    "Yuki",
    "Ana",
]
LAST = ["Smith", "Garcia", "Chen", "Okafor", "Müller", "Rossi", "Kowalski", "Silva", "Nguyen", "O'Brien"]
CITIES = [
    ("Boston", "MA", "United States", "02110", "America/New_York"),
    ("Austin", "TX", "United States", "73301", "America/Chicago"),
    ("Toronto", "ON", "Canada", "M5H 2N2", "America/Toronto"),
    ("London", None, "United Kingdom", "EC1A 1BB", "Europe/London"),
    ("Lyon", None, "France", "69001", "Europe/Paris"),
]
LIST_NAMES = [
    "Newsletter",
    "VIP Customers",
    "Preview List",
    "Sample Data List",
    "Website Signups",
    "SMS Subscribers",
]
SEGMENT_NAMES = ["Engaged (90 days)", "Repeat Buyers", "Churn Risk", "Never Purchased", "High AOV", "Winback"]
FLOW_NAMES = [
    "Welcome Series",
    "Abandoned Cart",
    "Browse Abandonment",
    "Post-Purchase",
    "Winback",
    "Birthday",
]
SUPPRESSION_REASONS = ["HARD_BOUNCE", "INVALID_EMAIL", "SPAM_COMPLAINT", "UNSUBSCRIBE", "USER_SUPPRESSED"]
CAMPAIGN_STATUSES = ["Sent", "Sent", "Sent", "Draft", "Scheduled", "Cancelled", "Variations Sent"]
TRIGGER_TYPES = ["Added to List", "Metric", "Date Based", "Price Drop", "Low Inventory", "Unconfigured"]

MEMBERSHIP_TYPES = ("list", "segment")
_UPDATED_FIELDS = ("updated", "updated_at")


class AccountData:
    """A whole Klaviyo account. Thread-safe: every read and write takes :attr:`lock`."""

    def __init__(self, size: str = "tiny", seed: int = 1, now: datetime | None = None) -> None:
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; expected one of {sorted(SIZES)}")
        self.size = size
        self.seed = seed
        self.spec_size = SIZES[size]
        self.lock = threading.RLock()
        self.generation = 0  # bumped by every mutation (invalidates rendered-JSON caches)
        self.now = now or datetime.now(UTC)
        self.store: dict[str, dict[str, Rec]] = {}
        # group kind -> group id -> profile id -> joined_group_at (epoch micros, whole seconds)
        self.members: dict[str, dict[str, Any]] = {"list": {}, "segment": {}}  # dicts, or LazyMembers
        #: The reports' tallies of the events (klaviyo_emulator/report_stats.py), for the current generation.
        self.report_tallies: dict[tuple[int, int, str | None], Any] = {}
        get_spec()  # parse once up front so the first request is not slow
        self._build()

    # ---- generic access --------------------------------------------------------------------------
    def _rng(self, section: str) -> random.Random:
        return random.Random(f"{section}:{self.size}:{self.seed}")

    def _put(self, rec: Rec) -> Rec:
        self.store.setdefault(rec.type, {})[rec.id] = rec
        return rec

    def records(self, rtype: str) -> list[Rec]:
        """All stored records of a type (not events), in insertion order."""
        with self.lock:
            return list(self.store.get(rtype, {}).values())

    def get(self, rtype: str, rid: str) -> Rec | None:
        """One record by type and id (events included)."""
        with self.lock:
            if rtype == "event":
                idx = self.events.index_of(rid)
                return None if idx is None else self.events.record(idx)
            if rtype == "attribution":
                return self.events.attribution(rid)
            return self.store.get(rtype, {}).get(rid)

    def related_ids(self, rec: Rec, rel: str) -> list[str] | str | None:
        """Ids a relationship points at, including the ones derived from memberships."""
        with self.lock:
            if rec.type in MEMBERSHIP_TYPES and rel == "profiles":
                return list(self.members[rec.type].get(rec.id, {}))
            if rec.type == "profile" and rel in ("lists", "segments"):
                kind = rel[:-1]
                return [gid for gid, mem in self.members[kind].items() if rec.id in mem]
            if rec.type == "tag" and rel in ("lists", "segments", "campaigns", "flows"):
                kind = rel[:-1]
                return [r.id for r in self.store.get(kind, {}).values() if rec.id in r.rels.get("tags", [])]
            if rec.type == "metric" and rel == "flow-triggers":
                return list(rec.rels.get(rel, []))
            value = rec.rels.get(rel)
            if isinstance(value, list):
                return list(value)
            return value

    # ---- public helpers for tests ----------------------------------------------------------------
    def precompute(self) -> None:
        """What every read of a lazy account asks for again, worked out before it is served (the benchmark's
        full-size accounts: their profile ids and the events' property tails)."""
        profiles = self.store["profile"]
        if isinstance(profiles, LazyProfiles):
            profiles.fill_ids()
        self.events.precompute_tails()

    def expected_ids(self, resource_type: str) -> set[str]:
        """Exactly which ids of a type the account holds right now."""
        with self.lock:
            if resource_type == "event":
                return self.events.all_ids()
            # what the collection serves: a message's private template copy is not listed
            return {rid for rid, rec in self.store.get(resource_type, {}).items() if rec.extra.get("listed", True)}

    def expected_attributions(self) -> dict[str, dict[str, str]]:
        """Every attribution of every event (only base events have some): id -> relationship -> related id,
        the links it lacks absent."""
        with self.lock:
            store = self.events
            return {a.id: dict(a.rels) for idx in range(store.n) for a in store.attributions(idx)}

    def event_count(self) -> int:
        with self.lock:
            return self.events.count()

    def list_members(self, list_id: str) -> dict[str, str]:
        """profile id -> joined_group_at of one list."""
        with self.lock:
            return {pid: fmt(t) for pid, t in self.members["list"].get(list_id, {}).items()}

    def segment_members(self, segment_id: str) -> dict[str, str]:
        with self.lock:
            return {pid: fmt(t) for pid, t in self.members["segment"].get(segment_id, {}).items()}

    def future_event_ids(self) -> list[str]:
        return list(self._future_ids)

    def metric_id(self, name: str) -> str:
        """Id of a generated metric by name (e.g. ``"Placed Order"``)."""
        with self.lock:
            for rec in self.store["metric"].values():
                if rec.attrs["name"] == name:
                    return rec.id
        raise KeyError(name)

    def campaigns_by_channel(self, channel: str, archived: bool | None = None) -> set[str]:
        with self.lock:
            return {
                r.id
                for r in self.store["campaign"].values()
                if r.extra["channel"] == channel and (archived is None or r.attrs["archived"] == archived)
            }

    # ---- mutation helpers ------------------------------------------------------------------------
    def append_events(
        self, count: int, when: datetime, metric_id: str | None = None, profile_id: str | None = None
    ) -> list[str]:
        """Add ``count`` events at ``when`` (past dates model late arrivals); returns their ids."""
        with self.lock:
            if metric_id is not None and metric_id not in self.store["metric"]:
                raise KeyError(f"unknown metric {metric_id}")
            if profile_id is not None and profile_id not in self.store["profile"]:
                raise KeyError(f"unknown profile {profile_id}")
            self.generation += 1
            at = micros(when)
            return [self.events.append(at, metric_id, profile_id) for _ in range(count)]

    def add_profile(self, **attrs: Any) -> str:
        """Create a profile now (or at ``created``/``updated`` given as datetimes or strings)."""
        if self.spec_size.lazy:
            raise TypeError("a lazy account's profiles are read-only")
        with self.lock:
            self.generation += 1
            rng = self._rng(f"add-profile-{len(self.store['profile'])}")
            created = _as_micros(attrs.pop("created", None)) or micros(datetime.now(UTC))
            updated = _as_micros(attrs.pop("updated", None)) or created
            pid = ulid(created, rng)
            base = self._profile_attrs(rng, len(self.store["profile"]), created, updated)
            base.update(attrs)
            self._put(Rec("profile", pid, base, {"lists": [], "segments": [], "push-tokens": []}))
            self.events.add_profile(pid)
            return pid

    def touch_profile(self, profile_id: str, when: datetime) -> None:
        self.touch("profile", profile_id, when)

    def touch(self, resource_type: str, rid: str, when: datetime) -> None:
        """Bump ``updated``/``updated_at`` of a record (list, segment, flow, campaign, template, ...)."""
        with self.lock:
            self.generation += 1
            rec = self.store[resource_type][rid]
            for name in _UPDATED_FIELDS:
                if name in rec.attrs:
                    rec.attrs = {**rec.attrs, name: fmt(micros(when))}
                    return
            raise KeyError(f"{resource_type} has no updated field")

    def delete(self, resource_type: str, rid: str) -> None:
        """Delete a record as Klaviyo does: a list or segment with its memberships, a campaign with its
        messages and recipient estimation; references to it elsewhere (tags, audiences) are left as they are."""
        with self.lock:
            rec = self.store.get(resource_type, {}).pop(rid, None)
            if rec is None:
                raise KeyError(f"unknown {resource_type} {rid}")
            self.generation += 1
            if resource_type in MEMBERSHIP_TYPES:
                self.members[resource_type].pop(rid, None)
            if resource_type == "campaign":
                for message_id in rec.rels.get("campaign-messages") or []:
                    self.store.get("campaign-message", {}).pop(message_id, None)
                self.store.get("campaign-recipient-estimation", {}).pop(rid, None)

    def add_list_member(self, list_id: str, profile_id: str, joined_at: datetime) -> None:
        self._add_member("list", list_id, profile_id, joined_at)

    def remove_list_member(self, list_id: str, profile_id: str) -> None:
        self._remove_member("list", list_id, profile_id)

    def add_segment_member(self, segment_id: str, profile_id: str, joined_at: datetime) -> None:
        self._add_member("segment", segment_id, profile_id, joined_at)

    def remove_segment_member(self, segment_id: str, profile_id: str) -> None:
        self._remove_member("segment", segment_id, profile_id)

    def _add_member(self, kind: str, group_id: str, profile_id: str, joined_at: datetime) -> None:
        with self.lock:
            self.generation += 1
            if group_id not in self.store[kind]:
                raise KeyError(f"unknown {kind} {group_id}")
            if profile_id not in self.store["profile"]:
                raise KeyError(f"unknown profile {profile_id}")
            self.members[kind].setdefault(group_id, {})[profile_id] = micros(joined_at) - micros(joined_at) % SECOND

    def _remove_member(self, kind: str, group_id: str, profile_id: str) -> None:
        with self.lock:
            self.generation += 1
            self.members[kind].get(group_id, {}).pop(profile_id, None)

    # ---- generation ------------------------------------------------------------------------------
    def _build(self) -> None:
        s = self.spec_size
        self.t0 = micros(TIMELINE_START)
        self.t1 = micros(TIMELINE_END)
        self._build_account()
        id_rng = self._rng("group-ids")
        list_ids = [short_id(id_rng) for _ in range(s.lists)]
        segment_ids = [short_id(id_rng) for _ in range(s.segments)]
        self._list_ids, self._segment_ids = list_ids, segment_ids
        self._build_profiles()
        self._build_metrics()
        self._build_groups("list", list_ids, LIST_NAMES)
        self._build_groups("segment", segment_ids, SEGMENT_NAMES)
        self._build_templates()
        self._build_secondary()
        self._build_flows()
        self._build_campaigns()
        self._build_tags()
        self._build_events()

    def _build_account(self) -> None:
        rng = self._rng("account")
        aid = short_id(rng)
        attrs = dict(default_attributes("account"))
        attrs.update(
            test_account=False,
            industry="Retail / Apparel",
            timezone="America/New_York",
            preferred_currency="USD",
            public_api_key=aid,
            locale="en-US",
            contact_information={
                "default_sender_name": "Emulated Outfitters",
                "default_sender_email": "hello@emulated-outfitters.example",
                "website_url": "https://emulated-outfitters.example",
                "organization_name": "Emulated Outfitters",
                "street_address": {
                    "address1": "125 Summer St",
                    "address2": None,
                    "city": "Boston",
                    "region": "MA",
                    "country": "US",
                    "zip": "02110",
                },
            },
        )
        self.account_id = aid
        self._put(Rec("account", aid, attrs))

    def _stamp(self, rng: random.Random, lo: int | None = None, hi: int | None = None, micro: bool = False) -> int:
        lo = self.t0 if lo is None else lo
        hi = self.t1 if hi is None else hi
        value = rng.randrange(lo, max(lo + 1, hi))
        return value if micro else value - value % SECOND

    def _profile_attrs(self, rng: random.Random, k: int, created: int, updated: int) -> dict[str, Any]:
        first, last = FIRST[k % len(FIRST)], LAST[(k // len(FIRST) + k) % len(LAST)]
        city = CITIES[k % len(CITIES)]
        has_phone = k % 3 == 0
        props: dict[str, Any] = {
            "plan": ("free", "pro", "enterprise")[k % 3],
            "Accepts Marketing": k % 4 != 0,
        }
        # The same key with different JSON types across profiles, as real accounts have.
        kind = k % 5
        if kind == 0:
            props["lifetime_score"] = f"tier-{k % 7}"
        elif kind == 1:
            props["lifetime_score"] = k % 97 + 0.5
        elif kind == 2:
            props["lifetime_score"] = [k % 5, k % 11]
        elif kind == 3:
            props["lifetime_score"] = {"value": k % 13, "source": "quiz"}
        if k % 6 == 0:
            props["favorite_colors"] = ["red", "teal"][: 1 + k % 2]
        if k % 9 == 0:
            props = {}
        attrs = {
            "email": f"{first.lower()}.{last.lower().replace(chr(39), '')}.{k}@example.com" if k % 17 else None,
            "phone_number": f"+1617555{k % 10000:04d}" if has_phone else None,
            "external_id": f"cust-{k:06d}" if k % 2 == 0 else None,
            "first_name": first,
            "last_name": last,
            "organization": "Acme Corp" if k % 8 == 0 else None,
            "locale": ("en-US", "fr-FR", "en-GB")[k % 3] if k % 5 else None,
            "title": "Buyer" if k % 11 == 0 else None,
            "image": None,
            "anonymous_id": f"anon-{k:08d}" if k % 4 == 1 else None,
            "whatsapp_bsuid": f"US.{13_000_000_000 + k * 7919}" if k % 5 == 2 else None,
            "created": fmt(created),
            "updated": fmt(updated, keep_micros=k % 3 == 1),
            "last_event_date": None,
            "location": {
                "address1": f"{k % 900 + 1} Main St" if k % 4 else None,
                "address2": None,
                "city": city[0],
                "country": city[2],
                "latitude": round(42.36 - (k % 50) / 10, 4) if k % 2 else None,
                "longitude": round(-71.05 + (k % 50) / 10, 4) if k % 2 else None,
                "region": city[1],
                "zip": city[3],
                "timezone": city[4],
                "ip": f"203.0.113.{k % 250}",
            },
            "properties": props,
            "subscriptions": self._subscriptions(rng, k, created, has_phone),
            "predictive_analytics": {
                **default_attributes("profile")["predictive_analytics"],
                "historic_clv": round((k * 37) % 900 + 0.25, 2),
                "predicted_clv": round((k * 13) % 300 + 0.5, 2),
                "total_clv": round((k * 37) % 900 + (k * 13) % 300 + 0.75, 2),
                "historic_number_of_orders": k % 9,
                "predicted_number_of_orders": round((k % 7) / 3, 2),
                "churn_probability": round((k % 100) / 100, 2),
                "expected_date_of_next_order": fmt(self.t1 + (k % 90) * DAY),
            },
        }
        return attrs

    def _subscriptions(self, rng: random.Random, k: int, created: int, has_phone: bool) -> dict[str, Any]:
        consent = ("SUBSCRIBED", "UNSUBSCRIBED", "NEVER_SUBSCRIBED")[k % 3]
        stamp = fmt(created + (k % 50) * DAY)
        suppression: list[dict[str, str]] = []
        list_suppressions: list[dict[str, str]] = []
        if k % 10 == 3:
            suppression.append(
                {"reason": SUPPRESSION_REASONS[(k // 10) % 5], "timestamp": fmt(created + (k % 200 + 1) * DAY)}
            )
        if k % 12 == 5 and self._list_ids:
            list_suppressions.append(
                {
                    "list_id": self._list_ids[k % len(self._list_ids)],
                    "reason": "USER_SUPPRESSED",
                    "timestamp": fmt(created + (k % 150 + 2) * DAY, keep_micros=True),
                }
            )
        email_marketing = {
            "can_receive_email_marketing": consent == "SUBSCRIBED" and not suppression,
            "consent": consent,
            "consent_timestamp": stamp if consent != "NEVER_SUBSCRIBED" else None,
            "last_updated": stamp,
            "method": "FORM" if consent != "NEVER_SUBSCRIBED" else None,
            "method_detail": "Website signup" if consent == "SUBSCRIBED" else "",
            "custom_method_detail": None,
            "double_optin": k % 4 == 0,
            "suppression": suppression,
            "list_suppressions": list_suppressions,
        }
        sms_consent = "SUBSCRIBED" if has_phone and k % 2 == 0 else "NEVER_SUBSCRIBED"
        return {
            "email": {
                "marketing": email_marketing,
                "open_tracking": {
                    "consent": "GRANTED",
                    "consent_timestamp": None,
                    "last_updated": None,
                    "created_timestamp": stamp,
                    "metadata": None,
                    "can_receive": True,
                    "valid_until": None,
                },
                "click_tracking": click_tracking(stamp, k),
            },
            "sms": {
                "marketing": {
                    "can_receive_sms_marketing": sms_consent == "SUBSCRIBED",
                    "consent": sms_consent,
                    "consent_timestamp": stamp if sms_consent == "SUBSCRIBED" else None,
                    "method": "TEXT" if sms_consent == "SUBSCRIBED" else None,
                    "method_detail": "",
                    "last_updated": stamp,
                },
                "transactional": {
                    "can_receive_sms_transactional": has_phone,
                    "consent": "SUBSCRIBED" if has_phone else "NEVER_SUBSCRIBED",
                    "consent_timestamp": None,
                    "method": None,
                    "method_detail": "",
                    "last_updated": None,
                },
            },
            "mobile_push": {
                "marketing": {
                    "can_receive_push_marketing": k % 7 == 0,
                    "consent": "SUBSCRIBED" if k % 7 == 0 else "NEVER_SUBSCRIBED",
                    "consent_timestamp": None,
                }
            },
        }

    def _build_lazy_profiles(self) -> None:
        rng = self._rng("profiles")
        lazy = LazyProfiles(
            self.spec_size.profiles,
            self.seed * 31 + 7,
            self.t0 + 30 * DAY,
            self.t1 - DAY,
            lambda p, created, updated: self._profile_attrs(rng, p, created, updated),
        )
        self.store["profile"] = lazy  # type: ignore[assignment]
        self._profile_order: Sequence[str] = lazy.ids()

    def _build_profiles(self) -> None:
        if self.spec_size.lazy:
            self._build_lazy_profiles()
            return
        rng = self._rng("profiles")
        n = self.spec_size.profiles
        created = sorted(self._stamp(rng, self.t0, self.t1 - 30 * DAY) for _ in range(n))
        updated = [min(c + rng.randrange(0, 400 * DAY), self.t1 - DAY) for c in created]
        for i in range(n):
            if i % 3 == 1:
                updated[i] += rng.randrange(1, SECOND)  # microseconds on some, as the API returns
        ids = [ulid(c, rng) for c in created]
        # Ties on `updated` straddling the 100-profile page boundary (and a small early group).
        order = sorted(range(n), key=lambda i: (updated[i], ids[i]))
        for lo, hi in ((95, 105), (10, 14)):
            if n > hi:
                tie = updated[order[hi - 1]] - updated[order[hi - 1]] % SECOND
                for pos in range(lo, hi):
                    updated[order[pos]] = tie
        self._profile_order = ids
        self._pcreated = dict(zip(ids, created, strict=True))
        for k in range(n):
            attrs = self._profile_attrs(rng, k, created[k], updated[k])
            if updated[k] % SECOND == 0:
                attrs["updated"] = fmt(updated[k])
            self._put(Rec("profile", ids[k], attrs, {"lists": [], "segments": [], "push-tokens": []}))

    def _build_metrics(self) -> None:
        rng = self._rng("metrics")
        self._metric_ids: list[str] = []
        for d in METRICS:
            mid = short_id(rng)
            created = fmt(self._stamp(rng, self.t0, self.t0 + 30 * DAY))
            attrs = {
                "name": d.name,
                "created": created,
                "updated": created,
                "integration": INTEGRATIONS[d.integration],
            }
            self._put(Rec("metric", mid, attrs, {"flow-triggers": []}))
            self._metric_ids.append(mid)
        for k in range(self.spec_size.extra_metrics):
            mid = short_id(rng)
            created = fmt(self._stamp(rng))
            attrs = {
                "name": f"Custom Event {k:03d}",
                "created": created,
                "updated": created,
                "integration": INTEGRATIONS["api"],
            }
            self._put(Rec("metric", mid, attrs, {"flow-triggers": []}))
        for mid in self._metric_ids[:6]:
            props = []
            for j, (label, prop, kind) in enumerate(
                [
                    ("Subject", "Subject", "string"),
                    ("Campaign Name", "Campaign Name", "string"),
                    ("Value", "$value", "number"),
                ]
            ):
                pid = f"{mid}-p{j}"
                attrs = {
                    "label": label,
                    "property": prop,
                    "inferred_type": kind,
                    "sample_values": [f"{label} A", f"{label} B"],
                }
                self._put(Rec("metric-property", pid, attrs, {"metric": mid}))
                props.append(pid)
            self.store["metric"][mid].rels["metric-properties"] = props

    def _build_groups(self, kind: str, ids: list[str], names: list[str]) -> None:
        rng = self._rng(f"{kind}s")
        profiles = self._profile_order
        pcreated = getattr(self, "_pcreated", {})  # none on a lazy account (its groups are lazy too)
        created = [self._stamp(rng, self.t0, self.t0 + 700 * DAY) for _ in ids]
        updated = [min(c + rng.randrange(0, 500 * DAY), self.t1 - DAY) for c in created]
        order = sorted(range(len(ids)), key=lambda i: (updated[i], ids[i]))
        if len(ids) > 11:  # several share `updated` across the page boundary of 10
            tie = updated[order[11]]  # the group's latest value keeps updated >= created for all of them
            for pos in range(8, 12):
                updated[order[pos]] = tie
        for i, gid in enumerate(ids):
            name = names[i] if i < len(names) else f"{names[i % len(names)]} {i}"
            attrs = dict(default_attributes(kind))
            attrs.update(name=name, created=fmt(created[i]), updated=fmt(updated[i]))
            if kind == "list":
                attrs["opt_in_process"] = "double_opt_in" if i % 4 == 1 else "single_opt_in"
            else:
                attrs.update(is_active=i % 5 != 4, is_processing=False, is_starred=i % 3 == 0)
                attrs["definition"] = self._segment_definition(i, ids)
            attrs.pop("profile_count", None)
            self._put(Rec(kind, gid, attrs, {"tags": [], "flow-triggers": []}))
            if self.spec_size.lazy:
                self.members[kind][gid] = self._lazy_members(rng, i, len(ids), created[i])
                continue
            if i == 0:
                size = max(110, int(len(profiles) * 0.6))
            elif i == len(ids) - 1:
                size = 0  # an empty group
            else:
                size = rng.randrange(3, max(4, int(len(profiles) * 0.2)))
            chosen = rng.sample(profiles, min(size, len(profiles)))
            start, cap, rand = created[i], self.t1 - DAY, rng.random
            joined = {}
            for pid in chosen:
                value = min(max(pcreated[pid], start) + int(rand() * 200 * DAY), cap)
                joined[pid] = value - value % SECOND
            if i == 0 and len(chosen) > 105:  # members sharing joined_group_at across the 100 boundary
                by_time = sorted(chosen, key=lambda p: (joined[p], p))
                tie = joined[by_time[104]]
                for pid in by_time[95:105]:
                    joined[pid] = tie
            self.members[kind][gid] = joined

    def _segment_definition(self, i: int, segment_ids: list[str]) -> dict[str, Any]:
        """Conditions naming real lists, segments and metrics by id (what a copy to another account translates)."""
        conditions: list[dict[str, Any]] = [
            {
                "type": "profile-group-membership",
                "is_member": True,
                "group_ids": [self._list_ids[i % len(self._list_ids)]],
            }
        ]
        if i % 3 == 2:
            conditions[0]["group_ids"].append(segment_ids[0])
        if i % 2 == 1 and self._metric_ids:
            conditions.append(
                {
                    "type": "profile-metric",
                    "metric_id": self._metric_ids[i % len(self._metric_ids)],
                    "measurement": "count",
                    "measurement_filter": {"type": "numeric", "operator": "greater-than", "value": 0},
                    "timeframe_filter": {"type": "date", "operator": "in-the-last", "unit": "day", "quantity": 90},
                }
            )
        return {"condition_groups": [{"conditions": conditions}]}

    def _lazy_members(self, rng: random.Random, i: int, groups: int, created: int) -> LazyMembers:
        """A lazy group: the first holds a fifth of the profiles, the last none, the others 1-6 %."""
        profiles = self.store["profile"]
        assert isinstance(profiles, LazyProfiles)
        n = profiles.n
        size = n // 5 if i == 0 else 0 if i == groups - 1 else rng.randrange(n // 100, max(n // 100 + 1, 6 * n // 100))
        return LazyMembers(
            profiles, max(size, min(n, 110)) if i == 0 else size, mix_seed(self.seed, i), created, self.t1 - DAY
        )

    def _build_templates(self) -> None:
        rng = self._rng("templates")
        n = self.spec_size.templates
        created = [self._stamp(rng) for _ in range(n)]
        updated = [min(c + rng.randrange(0, 200 * DAY), self.t1 - DAY) for c in created]
        order = sorted(range(n), key=lambda i: updated[i])
        if n > 11:
            for pos in range(8, 12):
                updated[order[pos]] = updated[order[11]]
        self._template_ids: list[str] = []
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
            self._put(Rec("template", tid, attrs))
            self._template_ids.append(tid)

    def _build_flows(self) -> None:
        rng = self._rng("flows")
        spec = get_spec()
        fa_schema = spec.operation("GET", "/api/flows/{id}/flow-actions").data
        fm_schema = spec.operation("GET", "/api/flow-actions/{id}/flow-messages").data
        assert fa_schema is not None and fm_schema is not None
        self._flow_messages: list[tuple[str, str, str]] = []
        images = list(self.store.get("image", {}))
        n = self.spec_size.flows
        for i in range(n):
            fid = short_id(rng)
            created = self._stamp(rng, self.t0, self.t1 - 200 * DAY)
            updated = min(created + rng.randrange(0, 300 * DAY), self.t1 - DAY)
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
            flow = self._put(Rec("flow", fid, attrs, {"flow-actions": [], "tags": []}))
            if trigger == "Metric":
                self.store["metric"][self._metric_ids[(i * 5) % len(self._metric_ids)]].rels["flow-triggers"].append(
                    fid
                )
            if trigger == "Added to List" and self._list_ids:
                self.store["list"][self._list_ids[i % len(self._list_ids)]].rels["flow-triggers"].append(fid)
            kinds = [
                "send-email",
                "time-delay",
                "send-sms",
                "conditional-split",
                "send-email",
                "send-mobile-push",
            ]
            for j in range(2 + (i * 7 + 3) % 5):
                aid = str(rng.randrange(10_000_000, 99_999_999))
                kind = kinds[j % len(kinds)] if j else "send-email"
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
                action = self._put(
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
                    continue
                channel = {"send-email": "email", "send-sms": "sms", "send-mobile-push": "push"}[kind]
                variant = {"email": "FlowEmail", "sms": "FlowSms", "push": "FlowPushNotification"}[channel]
                for m in range(1 + (i + j) % 3):
                    mid = short_id(rng)
                    m_name = f"{name} - {channel} {j}.{m}"
                    m_def = fake_value(spec, {"$ref": f"#/components/schemas/{variant}"}, f"fm{mid}", 2)
                    m_def.update(name=m_name, id=mid)
                    if channel == "email":
                        m_def.update(SENDER, subject_line=f"{name}: step {j}.{m}", preview_text="We saved your cart")
                    else:
                        m_def["body"] = f"{name}: step {j}.{m}. Reply STOP to opt out."
                    template = self._template_ids[(i + j + m) % len(self._template_ids)] if channel == "email" else None
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
                    self._put(Rec("flow-message", mid, m_attrs, rels, {"name": m_name}))
                    action.rels["flow-messages"].append(mid)
                    self._flow_messages.append((mid, fid, m_name))

    def _build_campaigns(self) -> None:
        rng = self._rng("campaigns")
        self._campaign_messages: list[tuple[str, str, str, str]] = []
        channels = ["email", "sms", "mobile_push"]
        n = self.spec_size.campaigns
        images = list(self.store.get("image", {}))
        for i in range(n):
            channel = channels[i] if i < 3 else ("email", "email", "email", "sms", "mobile_push")[rng.randrange(5)]
            created = self._stamp(rng, self.t0, self.t1 - 60 * DAY)
            updated = min(created + rng.randrange(0, 300 * DAY), self.t1 - DAY)
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
                    "included": [self._list_ids[i % len(self._list_ids)]],
                    "excluded": [self._segment_ids[i % len(self._segment_ids)]] if i % 3 == 0 else [],
                },
                send_options={"use_smart_sending": i % 3 != 0},
                tracking_options=(
                    {
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
                    if channel != "mobile_push"
                    else None
                ),
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
            campaign = self._put(
                Rec("campaign", cid, attrs, {"campaign-messages": [], "tags": []}, {"channel": channel})
            )
            self._put(Rec("campaign-recipient-estimation", cid, {"estimated_recipient_count": 50 + (i * 97) % 5000}))
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
                template = self._template_ids[(i + m) % len(self._template_ids)] if channel == "email" else None
                image = images[i % len(images)] if channel != "email" and images and i % 2 == 0 else None
                self._put(
                    Rec(
                        "campaign-message",
                        mid,
                        m_attrs,
                        {"campaign": cid, "template": template, "image": image},
                    )
                )
                campaign.rels["campaign-messages"].append(mid)
                self._campaign_messages.append((mid, cid, name, channel))
        # The oldest live campaign of each channel was edited last, so the API's default order (by id,
        # i.e. creation) is never the updated_at order: a sorted-stream assertion must not rely on it.
        for channel in channels:
            live = sorted(
                r for r in self.store["campaign"].values() if r.extra["channel"] == channel and not r.attrs["archived"]
            )
            if len(live) > 1:
                latest = max(micros(datetime.fromisoformat(r.attrs["updated_at"])) for r in live)
                live[0].attrs["updated_at"] = fmt(min(latest + 3600 * SECOND, self.t1 - SECOND))

    def _build_tags(self) -> None:
        rng = self._rng("tags")
        groups = []
        for g, (name, exclusive) in enumerate([("Default", False), ("Season", True), ("Team", False)]):
            gid = str(rng.randrange(1_000_000, 9_999_999))
            self._put(Rec("tag-group", gid, {"name": name, "exclusive": exclusive, "default": g == 0}, {"tags": []}))
            groups.append(gid)
        tags = []
        for t, name in enumerate(["Promo", "Newsletter", "Spring", "Holiday", "Ops", "Growth", "Retention", "VIP"]):
            tid = str(_uuid_from(rng))
            group = groups[t % len(groups)]
            self._put(Rec("tag", tid, {"name": name}, {"tag-group": group}))
            self.store["tag-group"][group].rels["tags"].append(tid)
            tags.append(tid)
        for kind in ("campaign", "flow", "list", "segment"):
            for i, rec in enumerate(self.store[kind].values()):
                if i % 3 == 0:
                    rec.rels["tags"] = [tags[i % len(tags)]] + ([tags[(i + 3) % len(tags)]] if i % 2 else [])

    def _build_events(self) -> None:
        s = self.spec_size
        lazy = self.store["profile"] if isinstance(self.store["profile"], LazyProfiles) else None
        self.events = EventStore(
            s.events,
            self.seed,
            self._metric_ids,
            METRICS,
            self._profile_order if lazy else list(self._profile_order),
            micros(self.now),
            ProfilePositions(lazy) if lazy else None,
        )
        if lazy:
            self.events.known_profile_ids = lazy.known_ids
        ctx = self.events.ctx
        ctx.campaign_messages = self._campaign_messages
        ctx.flow_messages = self._flow_messages
        ctx.lists = [(lid, self.store["list"][lid].attrs["name"]) for lid in self._list_ids]
        ctx.forms = list(self.store.get("form", {}))
        ctx.products = [(r.id, r.attrs["title"], r.attrs["price"]) for r in self.store.get("catalog-item", {}).values()]
        # Three future-dated events (Klaviyo accepts timestamps ahead of now), after the fixed timeline.
        future = micros(self.now + timedelta(days=30))
        future -= future % SECOND
        self._future_ids = [self.events.append(future + k * 3600 * SECOND, self._metric_ids[k]) for k in range(3)]
        # last_event_date of each profile from its last base event.
        if lazy is not None:
            lazy.last_event = self._last_event_date
            return
        for k, pid in enumerate(self._profile_order):
            last = self._last_event_date(k)
            if last is not None:
                self.store["profile"][pid].attrs["last_event_date"] = last

    def _last_event_date(self, k: int) -> str | None:
        """The datetime of the last base event of the profile at ``k`` in the event store's profile ids."""
        store = self.events
        residue = (store.pa_inv * (k - store.pb)) % store.nprof if store.nprof > 1 else 0
        if residue >= store.n:
            return None
        return fmt(store.base_time(residue + ((store.n - 1 - residue) // store.nprof) * store.nprof))

    def _build_secondary(self) -> None:
        """Resources the tap reads less often: generated from the spec with a few realistic fields."""
        rng = self._rng("secondary")
        sc = self.spec_size.scale
        profiles = self._profile_order

        def stamp() -> str:
            return fmt(self._stamp(rng))

        for i in range(8 * sc):
            self._put(
                Rec(
                    "image",
                    str(rng.randrange(10**7, 10**8)),
                    _attrs(
                        "image",
                        {
                            "name": f"banner-{i}.png",
                            "image_url": f"https://cdn.example.com/images/banner-{i}.png",
                            "format": ("png", "jpeg", "gif")[i % 3],
                            "size": 1000 + i * 731,
                            "hidden": i % 7 == 6,
                            "updated_at": stamp(),
                        },
                    ),
                )
            )
        categories = []
        for i in range(3 * sc):
            cid = f"$custom:::$default:::cat-{i}"
            self._put(
                Rec(
                    "catalog-category",
                    cid,
                    _attrs(
                        "catalog-category",
                        {"external_id": f"cat-{i}", "name": f"Category {i}", "updated": stamp()},
                    ),
                    {"items": []},
                )
            )
            categories.append(cid)
        for i in range(10 * sc):
            iid = f"$custom:::$default:::SKU-{i:04d}"
            attrs = dict(default_attributes("catalog-item"))
            created = stamp()
            price = round(9.5 + i * 3.25, 2)
            attrs.update(
                external_id=f"SKU-{i:04d}",
                title=f"Product {i}",
                description=f"A fine product #{i}",
                price=price,
                url=f"https://shop.example.com/p/{i}",
                published=i % 9 != 8,
                created=created,
                updated=created,
            )
            cat = categories[i % len(categories)]
            self._put(Rec("catalog-item", iid, attrs, {"variants": [], "categories": [cat]}))
            self.store["catalog-category"][cat].rels["items"].append(iid)
            for v in range(2):
                vid = f"$custom:::$default:::SKU-{i:04d}-{v}"
                v_attrs = dict(default_attributes("catalog-variant"))
                v_attrs.update(
                    external_id=f"SKU-{i:04d}-{v}",
                    title=f"Product {i} / {'SM'[v]}",
                    sku=f"SKU-{i:04d}-{v}",
                    price=price,
                    published=True,
                    created=created,
                    updated=created,
                    inventory_quantity=(i * 7 + v) % 40,
                )
                self._put(Rec("catalog-variant", vid, v_attrs, {"item": iid}))
                self.store["catalog-item"][iid].rels["variants"].append(vid)
        for i in range(3 * sc):
            cpid = f"WELCOME{10 + i}"
            self._put(
                Rec(
                    "coupon",
                    cpid,
                    _attrs(
                        "coupon",
                        {
                            "external_id": cpid,
                            "description": f"{10 + i}% off first order",
                            "monitor_configuration": None,
                        },
                    ),
                    {"coupon-codes": []},
                )
            )
            for j in range(12):
                code = f"{cpid}-{j:03d}-{short_id(rng, 4).upper()}"
                status = ("UNASSIGNED", "ASSIGNED_TO_PROFILE", "USED")[j % 3]
                profile = profiles[(i * 12 + j) % len(profiles)] if status != "UNASSIGNED" else None
                self._put(
                    Rec(
                        "coupon-code",
                        code,
                        _attrs(
                            "coupon-code",
                            {
                                "unique_code": code,
                                "status": status,
                                "expires_at": fmt(self.t1 + (j % 4) * 30 * DAY) if j % 2 else None,
                            },
                        ),
                        {"coupon": cpid, "profile": profile},
                    )
                )
                self.store["coupon"][cpid].rels["coupon-codes"].append(code)
        for i in range(2 * sc):
            fid = short_id(rng)
            created_us = self._stamp(rng, self.t0, self.t1 - 100 * DAY)
            self._put(
                Rec(
                    "form",
                    fid,
                    _attrs(
                        "form",
                        {
                            "name": f"Signup form {i}",
                            "status": ("live", "draft")[i % 2],
                            "ab_test": i % 3 == 0,
                            "created_at": fmt(created_us),
                            "updated_at": fmt(created_us + DAY * (i + 1)),
                        },
                    ),
                    {"form-versions": []},
                )
            )
            for v in range(1 + i % 2):
                vid = str(rng.randrange(10**6, 10**7))
                self._put(
                    Rec(
                        "form-version",
                        vid,
                        _attrs(
                            "form-version",
                            {
                                "form_type": ("popup", "embed", "flyout", "full_page", "banner")[(i + v) % 5],
                                "variation_name": f"Variation {'AB'[v]}",
                                "ab_test": None if v == 0 else {"variation_name": "B"},
                                "status": ("live", "draft")[v],
                                "created_at": fmt(created_us + v * DAY),
                                "updated_at": fmt(created_us + (v + 2) * DAY),
                            },
                        ),
                        {"form": fid},
                    )
                )
                self.store["form"][fid].rels["form-versions"].append(vid)
        items = list(self.store["catalog-item"])
        for i in range(10 * sc):
            rid = str(rng.randrange(10**6, 10**7))
            attrs = dict(default_attributes("review"))
            created = stamp()
            attrs.update(
                email=f"reviewer{i}@example.com",
                status=None,
                verified=i % 2 == 0,
                review_type="review",
                created=created,
                updated=created,
                images=[],
                rating=1 + (i * 3) % 5,
                author=f"Reviewer {i}",
                content=f"Review text {i}",
                title=f"Review {i}",
                smart_quote=None,
                public_reply=None,
            )
            self._put(Rec("review", rid, attrs, {"item": items[i % len(items)], "events": []}))
        for i in range(3):
            created = stamp()
            self._put(
                Rec(
                    "web-feed",
                    short_id(rng),
                    _attrs(
                        "web-feed",
                        {
                            "name": f"Product feed {i}",
                            "url": f"https://shop.example.com/feed-{i}.json",
                            "request_method": "get",
                            "content_type": "json",
                            "created": created,
                            "updated": created,
                            "status": "ok",
                        },
                    ),
                )
            )
        for i in range(min(len(profiles) // 10, 25 * sc)):
            pid = profiles[i * 7 % len(profiles)]
            token_id = short_id(rng, 26)
            attrs = dict(default_attributes("push-token"))
            created = stamp()
            attrs.update(
                created=created,
                token=f"tok{short_id(rng, 32)}",
                enablement_status="AUTHORIZED",
                platform=("ios", "android")[i % 2],
                vendor=("apns", "fcm")[i % 2],
                background="AVAILABLE",
                recorded_date=created,
            )
            self._put(Rec("push-token", token_id, attrs, {"profile": pid}))
            self.store["profile"][pid].rels["push-tokens"].append(token_id)
        for i in range(3):
            uid = short_id(rng)
            attrs = dict(default_attributes("template-universal-content"))
            created = stamp()
            attrs.update(name=f"Footer block {i}", created=created, updated=created)
            self._put(Rec("template-universal-content", uid, attrs))
        self._put(Rec("tracking-setting", self.account_id, dict(default_attributes("tracking-setting"))))


def mix_seed(seed: int, i: int) -> int:
    """A lazy group's seed: distinct per account seed and group."""
    return seed * 1_000_003 + i * 7919 + 1


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


def _attrs(rtype: str, values: dict[str, Any]) -> dict[str, Any]:
    """Spec placeholders for every attribute of ``rtype``, overridden by ``values``."""
    out = dict(default_attributes(rtype))
    out.update(values)
    return out


def _uuid_from(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _as_micros(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return micros(value)
    return micros(datetime.fromisoformat(str(value)))


def iter_types(data: AccountData) -> Iterable[str]:
    return list(data.store)
