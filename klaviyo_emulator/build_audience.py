"""The account's people: the account record, profiles, metrics, lists and segments with their members, and the
events that tie them to everything else."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from .blueprint import INTEGRATIONS, METRICS, Blueprint
from .events import EventStore
from .fake import default_attributes
from .lazy import LazyMembers, LazyProfiles, ProfilePositions
from .records import DAY, SECOND, Rec, fmt, micros, short_id, ulid
from .undocumented import click_tracking

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
SUPPRESSION_REASONS = ["HARD_BOUNCE", "INVALID_EMAIL", "SPAM_COMPLAINT", "UNSUBSCRIBE", "USER_SUPPRESSED"]


def build_account(bp: Blueprint) -> None:
    rng = bp.rng("account")
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
    bp.account_id = aid
    bp.put(Rec("account", aid, attrs))


def profile_attrs(bp: Blueprint, rng: random.Random, k: int, created: int, updated: int) -> dict[str, Any]:
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
        "subscriptions": subscriptions(bp, rng, k, created, has_phone),
        "predictive_analytics": {
            **default_attributes("profile")["predictive_analytics"],
            "historic_clv": round((k * 37) % 900 + 0.25, 2),
            "predicted_clv": round((k * 13) % 300 + 0.5, 2),
            "total_clv": round((k * 37) % 900 + (k * 13) % 300 + 0.75, 2),
            "historic_number_of_orders": k % 9,
            "predicted_number_of_orders": round((k % 7) / 3, 2),
            "churn_probability": round((k % 100) / 100, 2),
            "expected_date_of_next_order": fmt(bp.t1 + (k % 90) * DAY),
        },
    }
    return attrs


def subscriptions(bp: Blueprint, rng: random.Random, k: int, created: int, has_phone: bool) -> dict[str, Any]:
    consent = ("SUBSCRIBED", "UNSUBSCRIBED", "NEVER_SUBSCRIBED")[k % 3]
    stamp = fmt(created + (k % 50) * DAY)
    suppression: list[dict[str, str]] = []
    list_suppressions: list[dict[str, str]] = []
    if k % 10 == 3:
        suppression.append(
            {"reason": SUPPRESSION_REASONS[(k // 10) % 5], "timestamp": fmt(created + (k % 200 + 1) * DAY)}
        )
    if k % 12 == 5 and bp.list_ids:
        list_suppressions.append(
            {
                "list_id": bp.list_ids[k % len(bp.list_ids)],
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


def build_lazy_profiles(bp: Blueprint) -> None:
    rng = bp.rng("profiles")
    lazy = LazyProfiles(
        bp.spec_size.profiles,
        bp.seed * 31 + 7,
        bp.t0 + 30 * DAY,
        bp.t1 - DAY,
        lambda p, created, updated: profile_attrs(bp, rng, p, created, updated),
    )
    bp.store["profile"] = lazy  # type: ignore[assignment]
    bp.profile_order = lazy.ids()


def build_profiles(bp: Blueprint) -> None:
    if bp.spec_size.lazy:
        build_lazy_profiles(bp)
        return
    rng = bp.rng("profiles")
    n = bp.spec_size.profiles
    created = sorted(bp.stamp(rng, bp.t0, bp.t1 - 30 * DAY) for _ in range(n))
    updated = [min(c + rng.randrange(0, 400 * DAY), bp.t1 - DAY) for c in created]
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
    bp.profile_order = ids
    bp.pcreated = dict(zip(ids, created, strict=True))
    for k in range(n):
        attrs = profile_attrs(bp, rng, k, created[k], updated[k])
        if updated[k] % SECOND == 0:
            attrs["updated"] = fmt(updated[k])
        bp.put(Rec("profile", ids[k], attrs, {"lists": [], "segments": [], "push-tokens": []}))


def build_metrics(bp: Blueprint) -> None:
    rng = bp.rng("metrics")
    bp.metric_ids = []
    for d in METRICS:
        mid = short_id(rng)
        created = fmt(bp.stamp(rng, bp.t0, bp.t0 + 30 * DAY))
        attrs = {
            "name": d.name,
            "created": created,
            "updated": created,
            "integration": INTEGRATIONS[d.integration],
        }
        bp.put(Rec("metric", mid, attrs, {"flow-triggers": []}))
        bp.metric_ids.append(mid)
    for k in range(bp.spec_size.extra_metrics):
        mid = short_id(rng)
        created = fmt(bp.stamp(rng))
        attrs = {
            "name": f"Custom Event {k:03d}",
            "created": created,
            "updated": created,
            "integration": INTEGRATIONS["api"],
        }
        bp.put(Rec("metric", mid, attrs, {"flow-triggers": []}))
    for mid in bp.metric_ids[:6]:
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
            bp.put(Rec("metric-property", pid, attrs, {"metric": mid}))
            props.append(pid)
        bp.store["metric"][mid].rels["metric-properties"] = props


def build_groups(bp: Blueprint, kind: str, ids: list[str], names: list[str]) -> None:
    rng = bp.rng(f"{kind}s")
    profiles = bp.profile_order
    pcreated = bp.pcreated  # empty on a lazy account (its groups are lazy too)
    created = [bp.stamp(rng, bp.t0, bp.t0 + 700 * DAY) for _ in ids]
    updated = [min(c + rng.randrange(0, 500 * DAY), bp.t1 - DAY) for c in created]
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
            attrs["definition"] = segment_definition(bp, i, ids)
        attrs.pop("profile_count", None)
        bp.put(Rec(kind, gid, attrs, {"tags": [], "flow-triggers": []}))
        if bp.spec_size.lazy:
            bp.members[kind][gid] = lazy_members(bp, rng, i, len(ids), created[i])
            continue
        if i == 0:
            size = max(110, int(len(profiles) * 0.6))
        elif i == len(ids) - 1:
            size = 0  # an empty group
        else:
            size = rng.randrange(3, max(4, int(len(profiles) * 0.2)))
        chosen = rng.sample(profiles, min(size, len(profiles)))
        start, cap, rand = created[i], bp.t1 - DAY, rng.random
        joined = {}
        for pid in chosen:
            value = min(max(pcreated[pid], start) + int(rand() * 200 * DAY), cap)
            joined[pid] = value - value % SECOND
        if i == 0 and len(chosen) > 105:  # members sharing joined_group_at across the 100 boundary
            by_time = sorted(chosen, key=lambda p: (joined[p], p))
            tie = joined[by_time[104]]
            for pid in by_time[95:105]:
                joined[pid] = tie
        bp.members[kind][gid] = joined


def segment_definition(bp: Blueprint, i: int, segment_ids: list[str]) -> dict[str, Any]:
    """Conditions naming real lists, segments and metrics by id (what a copy to another account translates)."""
    conditions: list[dict[str, Any]] = [
        {
            "type": "profile-group-membership",
            "is_member": True,
            "group_ids": [bp.list_ids[i % len(bp.list_ids)]],
        }
    ]
    if i % 3 == 2:
        conditions[0]["group_ids"].append(segment_ids[0])
    if i % 2 == 1 and bp.metric_ids:
        conditions.append(
            {
                "type": "profile-metric",
                "metric_id": bp.metric_ids[i % len(bp.metric_ids)],
                "measurement": "count",
                "measurement_filter": {"type": "numeric", "operator": "greater-than", "value": 0},
                "timeframe_filter": {"type": "date", "operator": "in-the-last", "unit": "day", "quantity": 90},
            }
        )
    return {"condition_groups": [{"conditions": conditions}]}


def lazy_members(bp: Blueprint, rng: random.Random, i: int, groups: int, created: int) -> LazyMembers:
    """A lazy group: the first holds a fifth of the profiles, the last none, the others 1-6 %."""
    profiles = bp.store["profile"]
    assert isinstance(profiles, LazyProfiles)
    n = profiles.n
    size = n // 5 if i == 0 else 0 if i == groups - 1 else rng.randrange(n // 100, max(n // 100 + 1, 6 * n // 100))
    return LazyMembers(profiles, max(size, min(n, 110)) if i == 0 else size, mix_seed(bp.seed, i), created, bp.t1 - DAY)


def build_events(bp: Blueprint, now: datetime) -> tuple[EventStore, list[str]]:
    """The event store over the built profiles and messages, and the ids of three future-dated events."""
    s = bp.spec_size
    store = bp.store
    lazy = store["profile"] if isinstance(store["profile"], LazyProfiles) else None
    events = EventStore(
        s.events,
        bp.seed,
        bp.metric_ids,
        METRICS,
        bp.profile_order if lazy else list(bp.profile_order),
        micros(now),
        ProfilePositions(lazy) if lazy else None,
    )
    if lazy:
        events.known_profile_ids = lazy.known_ids
    ctx = events.ctx
    ctx.campaign_messages = bp.campaign_messages
    ctx.flow_messages = bp.flow_messages
    ctx.lists = [(lid, store["list"][lid].attrs["name"]) for lid in bp.list_ids]
    ctx.forms = list(store.get("form", {}))
    ctx.products = [(r.id, r.attrs["title"], r.attrs["price"]) for r in store.get("catalog-item", {}).values()]
    # Three future-dated events (Klaviyo accepts timestamps ahead of now), after the fixed timeline.
    future = micros(now + timedelta(days=30))
    future -= future % SECOND
    future_ids = [events.append(future + k * 3600 * SECOND, bp.metric_ids[k]) for k in range(3)]
    # last_event_date of each profile from its last base event.
    if lazy is not None:
        lazy.last_event = LastEventDates(events)
        return events, future_ids
    last_event = LastEventDates(events)
    for k, pid in enumerate(bp.profile_order):
        last = last_event(k)
        if last is not None:
            store["profile"][pid].attrs["last_event_date"] = last
    return events, future_ids


class LastEventDates:
    """A profile's last_event_date from its last base event (what a lazy account's profiles ask for)."""

    def __init__(self, events: EventStore) -> None:
        self.events = events

    def __call__(self, k: int) -> str | None:
        """The datetime of the last base event of the profile at ``k`` in the event store's profile ids."""
        store = self.events
        residue = (store.pa_inv * (k - store.pb)) % store.nprof if store.nprof > 1 else 0
        if residue >= store.n:
            return None
        return fmt(store.base_time(residue + ((store.n - 1 - residue) // store.nprof) * store.nprof))


def mix_seed(seed: int, i: int) -> int:
    """A lazy group's seed: distinct per account seed and group."""
    return seed * 1_000_003 + i * 7919 + 1
