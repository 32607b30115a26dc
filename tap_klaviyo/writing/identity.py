"""Profile identifiers to Klaviyo profile ids: looked up 100 at a time, created when absent (memberships take ids).

Ids found are remembered for the run. Creating goes through the single-profile upsert, which matches on every
identifier, so a retried or repeated creation finds the same profile instead of making a second one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from tap_klaviyo.api.client import KlaviyoClient
from tap_klaviyo.writing.rows import IDENTIFIERS, quoted

LOOKUP_PAGE = 100


def key_of(ids: dict[str, str]) -> tuple[str, str]:
    """The identifier a profile is matched on: email, else phone_number, else external_id."""
    for name in IDENTIFIERS:
        if name in ids:
            return name, ids[name]
    raise KeyError("no identifier")


class ProfileIds:
    """Run-wide cache of (identifier, value) -> profile id."""

    def __init__(self, client: KlaviyoClient, dry_run: bool) -> None:
        self.client = client
        self.dry_run = dry_run
        self.known: dict[tuple[str, str], str] = {}
        self.lock = threading.Lock()
        self.created = 0

    def find(self, wanted: Iterable[dict[str, str]], what: str) -> dict[tuple[str, str], str]:
        """Ids of the profiles that exist (absent ones are left out)."""
        keys = {key_of(ids) for ids in wanted}
        with self.lock:
            missing = [key for key in keys if key not in self.known]
        for name in IDENTIFIERS:
            values = sorted(value for kind, value in missing if kind == name)
            for start in range(0, len(values), LOOKUP_PAGE):
                part = values[start : start + LOOKUP_PAGE]
                params = {
                    "filter": f"any({name},{quoted(part)})",
                    "page[size]": str(LOOKUP_PAGE),
                    "fields[profile]": ",".join(IDENTIFIERS),
                }
                for resource in self.client.pages("/api/profiles", params, what):
                    value = (resource.get("attributes") or {}).get(name)
                    if value is not None:
                        with self.lock:
                            self.known[(name, str(value))] = str(resource["id"])
        with self.lock:
            return {key: self.known[key] for key in keys if key in self.known}

    def ensure(self, wanted: list[dict[str, str]], what: str) -> dict[tuple[str, str], str]:
        """Ids of every profile, creating the absent ones (in a dry run, absent ones stay absent)."""
        found = self.find(wanted, what)
        if self.dry_run:
            return found
        for ids in wanted:
            key = key_of(ids)
            if key in found:
                continue
            body = {"data": {"type": "profile", "attributes": dict(ids)}}
            response = self.client.request("POST", "/api/profile-import", body=body, what=what)
            pid = str(response.json()["data"]["id"])
            with self.lock:
                self.known[key] = pid
                self.created += response.status_code == 201
            found[key] = pid
        return found
