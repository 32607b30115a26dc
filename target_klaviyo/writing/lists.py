"""Lists by name and id, read once per run; a list is created only when no list has the name.

Klaviyo caps list creation at 150 a day: the cap's 429 (or the limiter's daily count) becomes one message
naming it, and the rows needing a new list are rejected rather than retried for hours.
"""

from __future__ import annotations

import threading

from klaviyo_core.client import AmbiguousWrite, KlaviyoClient
from klaviyo_core.errors import RateLimitExhausted

DAILY_CAP_MESSAGE = (
    "Klaviyo's daily cap on new lists (150 a day) is reached: the list was not created; run again tomorrow"
)


class ListCapReached(Exception):
    """No more lists can be created today."""


class Lists:
    """The account's lists (name -> id), shared by the list, list_member and subscription sinks."""

    def __init__(self, client: KlaviyoClient, dry_run: bool) -> None:
        self.client = client
        self.dry_run = dry_run
        self.by_name: dict[str, str] | None = None
        self.ids: set[str] = set()
        self.lock = threading.RLock()
        self.capped = False
        #: name -> opt_in_process of list rows read but maybe not drained yet (a membership may create it first).
        self.declared: dict[str, str] = {}
        #: Names of the lists this run created (whichever sink got there first), or a dry run would create.
        self.created: set[str] = set()
        self.would_create: set[str] = set()

    def declare(self, name: str, opt_in_process: str | None) -> None:
        if opt_in_process:
            with self.lock:
                self.declared.setdefault(name, opt_in_process)

    def load(self, what: str) -> None:
        with self.lock:
            if self.by_name is not None:
                return
            by_name: dict[str, str] = {}
            for resource in self.client.pages("/api/lists", {"fields[list]": "name"}, what):
                name = str((resource.get("attributes") or {}).get("name") or "")
                by_name.setdefault(name, str(resource["id"]))
                self.ids.add(str(resource["id"]))
            self.by_name = by_name

    def find(self, name: str, what: str) -> str | None:
        self.load(what)
        assert self.by_name is not None
        return self.by_name.get(name)

    def forget(self, name: str) -> None:
        """The list named `name` was deleted."""
        with self.lock:
            if self.by_name is not None:
                list_id = self.by_name.pop(name, None)
                self.ids.discard(str(list_id))
            self.created.discard(name)

    def exists(self, list_id: str, what: str) -> bool:
        self.load(what)
        return list_id in self.ids

    def ensure(self, name: str, what: str, opt_in_process: str | None = None) -> tuple[str | None, bool]:
        """(id, created) of the list named `name`; (None, True) in a dry run that would create it."""
        with self.lock:
            found = self.find(name, what)
            if found is not None:
                return found, name in self.created
            if self.dry_run:
                # As in a real run, where `created` says so to every sink, whichever asked first (a membership
                # may be drained before its list row): the list sink counts it created either way.
                self.would_create.add(name)
                return None, True
            if self.capped:
                raise ListCapReached(DAILY_CAP_MESSAGE)
            attributes: dict[str, str] = {"name": name}
            opt_in_process = opt_in_process or self.declared.get(name)
            if opt_in_process:
                attributes["opt_in_process"] = opt_in_process
            body = {"data": {"type": "list", "attributes": attributes}}
            try:
                response = self.client.request("POST", "/api/lists", body=body, idempotent=False, what=what)
            except RateLimitExhausted:
                self.capped = True
                raise ListCapReached(DAILY_CAP_MESSAGE) from None
            except AmbiguousWrite:
                self.by_name = None  # did it happen? the account says
                found = self.find(name, what)
                if found is not None:
                    return found, True
                response = self.client.request("POST", "/api/lists", body=body, idempotent=False, what=what)
            list_id = str(response.json()["data"]["id"])
            assert self.by_name is not None
            self.by_name[name] = list_id
            self.ids.add(list_id)
            self.created.add(name)
            return list_id, True
