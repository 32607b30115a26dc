"""ACTIVATE_VERSION: a full read's version of a stream mirrored into the account.

A tap that read a stream in full stamps its records with a table version and then activates it. The objects
of that stream the account holds and the version did not write are what a mirror deletes. The version is
acted on once its records are complete: at the end of the input, never on the message's arrival (singer-sdk
taps send ACTIVATE_VERSION before their records, tap-klaviyo after them); a newer version replaces it.
"""

from __future__ import annotations

import threading
from collections import defaultdict


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
