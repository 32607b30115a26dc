"""What a stream says about the shapes Klaviyo sent: once per field, or once per stream at its end.

A real account's records may come without their replication key, without an id, or with a date-time no parser
reads. None of them ends the sync; each is counted here and named in one warning, never one per record.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any


class ShapeNotes:
    """One stream's counts of records Klaviyo sent incomplete."""

    def __init__(self, stream: str, logger: logging.Logger) -> None:
        self.stream = stream
        self.logger = logger
        #: Records that came without their replication key (emitted; they never move the bookmark).
        self.without_key = 0
        #: Resources without an id (the spec allows it for profiles): no target could key them.
        self.unkeyed = 0
        self.unreadable: set[str] = set()

    def unreadable_timestamp(self, column: str, value: Any) -> None:
        """A date-time no parser reads: the record keeps a null there, the log says so once per field."""
        if column not in self.unreadable:
            self.unreadable.add(column)
            self.logger.warning(
                "%s: Klaviyo sent %r in the date-time field %s, which is not a timestamp; the record keeps null "
                "there (further ones in this field are not named)",
                self.stream,
                str(value)[:60],
                column,
            )

    def report(self, replication_key: str | None, primary_keys: Sequence[str]) -> None:
        """The stream's end: what was counted, one line each (then the counts start over)."""
        if self.without_key:
            self.logger.warning(
                "%s: %d records came without %s; they were emitted and did not move the bookmark",
                self.stream,
                self.without_key,
                replication_key,
            )
        if self.unkeyed:
            self.logger.warning(
                "%s: skipped %d resources that came without %s: no target can key them",
                self.stream,
                self.unkeyed,
                ", ".join(primary_keys),
            )
        self.without_key = self.unkeyed = 0
