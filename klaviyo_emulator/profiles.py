"""Profiles written through the API: matching on identifiers, upsert semantics, validation of one row.

Klaviyo matches a written profile on email, phone number or external id (any of them), and a bulk import
never clears a field with a null, while the single `profile-import` does. Absent keys leave fields as they are;
`properties` and `location` are merged key by key.
"""

from __future__ import annotations

import json
import random
import re
from datetime import datetime
from typing import Any

from .data import AccountData
from .records import UTC, Rec, fmt, micros, ulid

IDENTIFIERS = ("email", "phone_number", "external_id")
SCALARS = (
    "email",
    "phone_number",
    "external_id",
    "first_name",
    "last_name",
    "organization",
    "locale",
    "title",
    "image",
)
LOCATION_KEYS = ("address1", "address2", "city", "country", "latitude", "longitude", "region", "zip", "timezone", "ip")
MAX_PROFILE_BYTES = 100 * 1024
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")


def now_micros() -> int:
    return micros(datetime.now(UTC))


def row_problem(attrs: dict[str, Any]) -> tuple[str, str] | None:
    """(pointer below the row, detail) of what Klaviyo refuses in one profile row, or None."""
    if len(json.dumps(attrs, separators=(",", ":"))) > MAX_PROFILE_BYTES:
        return "", "The profile exceeds the maximum size of 100 KB."
    if not any(attrs.get(name) for name in IDENTIFIERS):
        return "/attributes", "A profile needs one of email, phone_number or external_id."
    email = attrs.get("email")
    if email and not _EMAIL.match(str(email)):
        return "/attributes/email", f"Invalid email address: {email}"
    phone = attrs.get("phone_number")
    if phone and not _PHONE.match(str(phone)):
        return "/attributes/phone_number", f"Invalid phone number format (E.164 expected): {phone}"
    return None


def empty_subscriptions() -> dict[str, Any]:
    """A new profile's consent: never subscribed anywhere."""
    return {
        "email": {
            "marketing": {
                "can_receive_email_marketing": False,
                "consent": "NEVER_SUBSCRIBED",
                "consent_timestamp": None,
                "last_updated": None,
                "method": None,
                "method_detail": None,
                "custom_method_detail": None,
                "double_optin": None,
                "suppression": [],
                "list_suppressions": [],
            }
        },
        "sms": {
            "marketing": {
                "can_receive_sms_marketing": False,
                "consent": "NEVER_SUBSCRIBED",
                "consent_timestamp": None,
                "method": None,
                "method_detail": None,
                "last_updated": None,
            }
        },
    }


class ProfileBook:
    """The account's profiles by identifier, kept in step with the writes (rebuilt when others changed it)."""

    def __init__(self, data: AccountData) -> None:
        self.data = data
        self.rng = random.Random(f"written-profiles:{data.seed}")
        self.index: dict[str, dict[str, str]] = {}
        self.generation = -1

    def _fresh(self) -> None:
        if self.generation == self.data.generation:
            return
        self.index = {name: {} for name in IDENTIFIERS}
        for rec in self.data.store.get("profile", {}).values():
            for name in IDENTIFIERS:
                value = rec.attrs.get(name)
                if value:
                    self.index[name][str(value)] = rec.id
        self.generation = self.data.generation

    def _touched(self) -> None:
        self.data.generation += 1
        self.generation = self.data.generation

    def find(self, attrs: dict[str, Any]) -> str | None:
        self._fresh()
        for name in IDENTIFIERS:
            value = attrs.get(name)
            if value and str(value) in self.index[name]:
                return self.index[name][str(value)]
        return None

    def upsert(self, attrs: dict[str, Any], *, clear_nulls: bool) -> tuple[str, bool]:
        """(profile id, created) for one row; the caller holds the account lock."""
        pid = self.find(attrs)
        created = pid is None
        now = now_micros()
        if pid is None:
            pid = ulid(now, self.rng)
            rec = Rec("profile", pid, self._blank(now), {"lists": [], "segments": [], "push-tokens": []})
            self.data.store.setdefault("profile", {})[pid] = rec
            self.data.events.add_profile(pid)
        rec = self.data.store["profile"][pid]
        new = dict(rec.attrs)
        for name in SCALARS:
            if name in attrs and (attrs[name] is not None or clear_nulls):
                new[name] = attrs[name]
        for name, keys in (("location", LOCATION_KEYS), ("properties", None)):
            given = attrs.get(name)
            if isinstance(given, dict):
                merged = dict(new.get(name) or {})
                for key, value in given.items():
                    if (keys is None or key in keys) and (value is not None or clear_nulls):
                        merged[key] = value
                new[name] = merged
            elif name in attrs and given is None and clear_nulls:
                new[name] = {k: None for k in keys} if keys else {}
        if new != rec.attrs or created:
            new["updated"] = fmt(now)
            rec.attrs = new
        self._fresh_ids(rec)
        self._touched()
        return pid, created

    def _fresh_ids(self, rec: Rec) -> None:
        self._fresh()
        for name in IDENTIFIERS:
            value = rec.attrs.get(name)
            if value:
                self.index[name][str(value)] = rec.id

    def _blank(self, now: int) -> dict[str, Any]:
        stamp = fmt(now)
        return {
            **{name: None for name in SCALARS},
            "created": stamp,
            "updated": stamp,
            "last_event_date": None,
            "location": {key: None for key in LOCATION_KEYS},
            "properties": {},
            "subscriptions": empty_subscriptions(),
            "predictive_analytics": None,
            "anonymous_id": None,
            "whatsapp_bsuid": None,
        }
