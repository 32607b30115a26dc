"""The target account's objects of one type by key (a name, an external_id, an email), read once per run.

Ids mean nothing in another account: a row is matched by its key, and what the account holds under that key
decides what a write would be (create, update, nothing, delete). The collection is read on first use; a write
that may or may not have applied (`AmbiguousWrite`) is settled by reading it again, never by a blind retry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from klaviyo_core.client import KlaviyoClient
from klaviyo_core.errors import KlaviyoAPIError

#: A resource of the collection -> its key (None: it has none and cannot be matched).
KeyOf = Callable[[dict[str, Any]], str | None]


class Action(Enum):
    CREATE = "created"
    UPDATE = "updated"
    UNCHANGED = "unchanged"
    DELETE = "removed"


@dataclass
class Known:
    """One object of the target account: its id there and the attributes it was read (or written) with."""

    id: str
    attributes: dict[str, Any]


def by_attribute(name: str) -> KeyOf:
    def key_of(resource: dict[str, Any]) -> str | None:
        value = (resource.get("attributes") or {}).get(name)
        return None if value in (None, "") else str(value)

    return key_of


def comparable(value: Any) -> Any:
    """The value as Klaviyo gives it back: input numbers are Decimals (19.99 stays 19.99), Klaviyo's floats."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: comparable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [comparable(item) for item in value]
    return value


def changes(wanted: Mapping[str, Any], known: Known) -> dict[str, Any]:
    """The wanted attributes the account holds otherwise (an attribute not wanted is left as it is)."""
    return {
        name: value for name, value in wanted.items() if comparable(known.attributes.get(name)) != comparable(value)
    }


def delete_object(client: KlaviyoClient, path: str, what: str) -> None:
    """DELETE, retried when unclear: a 404 after a retry means the first attempt deleted it."""
    try:
        client.request("DELETE", path, what=what)
    except KlaviyoAPIError as exc:
        if exc.status != 404:
            raise


class KeyedObjects:
    """key -> `Known` of one collection of the target account (thread-safe; `lock` also serialises a sink's
    decide-then-write, so two batches never create the same key twice)."""

    def __init__(
        self,
        client: KlaviyoClient,
        path: str,
        params: Mapping[str, str],
        key_of: KeyOf,
        what: str,
        *,
        more_params: tuple[Mapping[str, str], ...] = (),
    ) -> None:
        """`more_params`: further listings of the same collection (campaigns: one per channel)."""
        self.client = client
        self.path = path
        self.listings = [dict(params), *(dict(more) for more in more_params)]
        self.key_of = key_of
        self.what = what
        self.lock = threading.RLock()
        self.known: dict[str, Known] | None = None
        #: Keys whose write is in a bulk job not yet complete: known, but not yet there to be referred to.
        self.pending: set[str] = set()

    def load(self) -> dict[str, Known]:
        with self.lock:
            if self.known is None:
                known: dict[str, Known] = {}
                for params in self.listings:
                    for resource in self.client.pages(self.path, params, self.what):
                        key = self.key_of(resource)
                        if key is not None:
                            attributes = dict(resource.get("attributes") or {})
                            known.setdefault(key, Known(str(resource["id"]), attributes))
                self.known = known
            return self.known

    def find(self, key: str) -> Known | None:
        return self.load().get(key)

    def reload(self) -> None:
        """Forget what was read: the next look-up reads the account again (after an unclear write, or jobs)."""
        with self.lock:
            self.known = None

    def remember(self, key: str, object_id: str, attributes: Mapping[str, Any]) -> None:
        with self.lock:
            known = self.load()
            found = known.get(key)
            if found is None or found.id != object_id:
                known[key] = Known(object_id, dict(attributes))
            else:
                found.attributes.update(attributes)

    def expect(self, key: str, object_id: str, attributes: Mapping[str, Any]) -> None:
        """A job will write this object: later rows see it, references to it wait until it is `settle`d."""
        with self.lock:
            self.remember(key, object_id, attributes)
            self.pending.add(key)

    def settle(self, key: str, written: bool) -> None:
        """The job is complete; an object it failed to write is read again from the account when next asked."""
        with self.lock:
            self.pending.discard(key)
            if not written:
                self.known = None

    def settled(self, key: str) -> Known | None:
        """The object under `key` when it is in the account now (not only in a job in flight)."""
        with self.lock:
            return None if key in self.pending else self.find(key)

    def forget(self, key: str) -> None:
        with self.lock:
            self.load().pop(key, None)

    def keys(self) -> list[str]:
        return list(self.load())

    def decide(self, key: str, wanted: Mapping[str, Any], deleting: bool) -> tuple[Action, Known | None]:
        """What a row asks of the account: deleting an absent object, or writing what is there, is no write."""
        found = self.find(key)
        if deleting:
            return (Action.UNCHANGED if found is None else Action.DELETE), found
        if found is None:
            return Action.CREATE, None
        return (Action.UPDATE if changes(wanted, found) else Action.UNCHANGED), found


class TargetObjects:
    """Every collection the run matches by key, one `KeyedObjects` each: a sink translating references reads
    the same objects as the sink writing them."""

    def __init__(self, client: KlaviyoClient) -> None:
        self.client = client
        self.collections: dict[str, KeyedObjects] = {}
        self.lock = threading.Lock()

    def of(
        self,
        path: str,
        params: Mapping[str, str],
        key_attribute: str,
        what: str,
        *,
        more_params: tuple[Mapping[str, str], ...] = (),
    ) -> KeyedObjects:
        with self.lock:
            found = self.collections.get(path)
            if found is None:
                key_of = by_attribute(key_attribute)
                found = self.collections[path] = KeyedObjects(
                    self.client, path, params, key_of, what, more_params=more_params
                )
            return found
