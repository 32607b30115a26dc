"""The generated Klaviyo account: deterministic from (size, seed), with mutation helpers for tests.

Everything except events is held in memory as :class:`~klaviyo_emulator.records.Rec` objects keyed by
type and id; events are computed on demand by :class:`~klaviyo_emulator.events.EventStore`. The only
input that is not (size, seed) is the wall clock at build time, which dates the three future events.
The builders that fill it live in klaviyo_emulator/build_*.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .attributions import Attributions
from .blueprint import SIZES, Blueprint, SizeSpec
from .build_audience import (
    LIST_NAMES,
    SEGMENT_NAMES,
    build_account,
    build_events,
    build_groups,
    build_metrics,
    build_profiles,
    profile_attrs,
)
from .build_messaging import build_campaigns, build_flows, build_tags, build_templates
from .build_objects import build_objects
from .event_pages import EventPages
from .lazy import LazyProfiles
from .records import SECOND, UTC, Rec, fmt, micros, short_id, ulid
from .spec import get_spec

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
        #: What the builders shared (klaviyo_emulator/blueprint.py); a new profile's attributes still come from it.
        self.plan = Blueprint(size, seed, self.spec_size, self.store, self.members)
        get_spec()  # parse once up front so the first request is not slow
        self._build()

    # ---- generic access --------------------------------------------------------------------------
    def records(self, rtype: str) -> list[Rec]:
        """All stored records of a type (not events), in insertion order."""
        with self.lock:
            return list(self.store.get(rtype, {}).values())

    def get(self, rtype: str, rid: str) -> Rec | None:
        """One record by type and id (events included)."""
        with self.lock:
            if rtype == "event":
                idx = self.events.index_of(rid)
                return None if idx is None else self.event_pages.record(idx)
            if rtype == "attribution":
                return self.attributions.attribution(rid)
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
        self.event_pages.precompute_tails()

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
            return {a.id: dict(a.rels) for idx in range(store.n) for a in self.attributions.attributions(idx)}

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
            rng = self.plan.rng(f"add-profile-{len(self.store['profile'])}")
            created = _as_micros(attrs.pop("created", None)) or micros(datetime.now(UTC))
            updated = _as_micros(attrs.pop("updated", None)) or created
            pid = ulid(created, rng)
            base = profile_attrs(self.plan, rng, len(self.store["profile"]), created, updated)
            base.update(attrs)
            rec = Rec("profile", pid, base, {"lists": [], "segments": [], "push-tokens": []})
            self.store.setdefault("profile", {})[pid] = rec
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

    # ---- generation ------------------------------------------------------------------------------
    def _build(self) -> None:
        """Every builder in turn over one blueprint (the order is the account's: ids come from it)."""
        bp = self.plan
        s = self.spec_size
        build_account(bp)
        self.account_id = bp.account_id
        id_rng = bp.rng("group-ids")
        bp.list_ids = [short_id(id_rng) for _ in range(s.lists)]
        bp.segment_ids = [short_id(id_rng) for _ in range(s.segments)]
        build_profiles(bp)
        build_metrics(bp)
        build_groups(bp, "list", bp.list_ids, LIST_NAMES)
        build_groups(bp, "segment", bp.segment_ids, SEGMENT_NAMES)
        build_templates(bp)
        build_objects(bp)
        build_flows(bp)
        build_campaigns(bp)
        build_tags(bp)
        self.events, self._future_ids = build_events(bp, self.now)
        #: Who an event's conversion is credited to, and its JSON (klaviyo_emulator/attributions.py, event_pages.py).
        self.attributions = Attributions(self.events)
        self.event_pages = EventPages(self.events, self.attributions)
        self.events.records = self.event_pages


def _as_micros(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return micros(value)
    return micros(datetime.fromisoformat(str(value)))


def iter_types(data: AccountData) -> Iterable[str]:
    return list(data.store)


__all__ = ["MEMBERSHIP_TYPES", "SIZES", "AccountData", "SizeSpec", "iter_types"]
