"""ACTIVATE_VERSION: a full read's version of a stream mirrored into the account.

A tap that read a stream in full stamps its records with a table version and then activates it. The objects
of that stream the account holds and the version did not write are what a mirror deletes. The version is
acted on once its records are complete: at the end of the input, never on the message's arrival (singer-sdk
taps send ACTIVATE_VERSION before their records, tap-klaviyo after them); a newer version replaces it.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

#: The summary's count of objects a mirror would have deleted.
NOT_DELETED = "not deleted (allow_deletes off)"


class Mirror:
    """Keys written by each table version of one stream, and the version activated last (thread-safe)."""

    def __init__(self) -> None:
        self.keys: dict[int, set[str]] = defaultdict(set)
        self.activated: int | None = None
        self.lock = threading.Lock()

    def wrote(self, version: object, key: str | None) -> None:
        if isinstance(version, int) and key:
            with self.lock:
                self.keys[version].add(key)

    def activate(self, version: int) -> None:
        with self.lock:
            if self.activated is None or version >= self.activated:
                self.activated = version

    def extra(self, account_keys: list[str]) -> list[str] | None:
        """The account's keys the activated version did not write (None: no version was activated)."""
        with self.lock:
            if self.activated is None:
                return None
            kept = self.keys.get(self.activated, set())
        return [key for key in account_keys if key not in kept]


def member_keys(ids: Mapping[str, Any]) -> set[str]:
    """A profile's identifiers as comparable keys: a row names a member by any of them (emails case-blind)."""
    keys = set()
    for name in ("profile_id", "id", "email", "phone_number", "external_id"):
        value = ids.get(name)
        if value:
            label = "profile_id" if name == "id" else name
            keys.add(f"{label}:{str(value).lower() if name == 'email' else value}")
    return keys


class MemberMirror:
    """Per table version: list (("list_id", id) or ("list_name", name)) -> the keys of the members written."""

    def __init__(self) -> None:
        self.members: dict[int, dict[tuple[str, str], set[str]]] = defaultdict(lambda: defaultdict(set))
        self.activated: int | None = None
        self.lock = threading.Lock()

    def wrote(self, version: object, row: Mapping[str, Any]) -> None:
        if not isinstance(version, int):
            return
        if row.get("list_id"):
            group = ("list_id", str(row["list_id"]))
        elif row.get("list_name"):
            group = ("list_name", str(row["list_name"]).strip())
        else:
            return
        with self.lock:
            self.members[version][group] |= member_keys(row)

    def activate(self, version: int) -> None:
        with self.lock:
            if self.activated is None or version >= self.activated:
                self.activated = version

    def written(self) -> dict[tuple[str, str], set[str]]:
        """The lists the activated version wrote, with their members' keys (empty: none activated)."""
        with self.lock:
            return {} if self.activated is None else dict(self.members.get(self.activated, {}))
