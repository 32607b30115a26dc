"""A campaign's messages and their templates, read before the campaign (the tap emits them first).

Their rows are not written by their own streams: the campaign's draft is created with its messages, and each
message's template assigned. Until the campaign is written their batches stay open (no STATE passes them);
the campaign sink settles them, with the campaign's outcome, at the end of the input.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from target_klaviyo.writing.pipeline import Unit

ORPHAN = "its campaign is not in the input's campaign rows (or was rejected): nothing was written"


class CampaignParts:
    """Source campaign id -> its message rows; source message id -> its template row (thread-safe)."""

    def __init__(self) -> None:
        self.messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.templates: dict[str, dict[str, Any]] = {}
        #: Batches of message and template rows, settled when the campaigns are written.
        self.units: list[Unit] = []
        #: Source campaign ids whose rows were settled (written, unchanged or rejected).
        self.settled: set[str] = set()
        self.closed = False
        self.lock = threading.Lock()

    def add_message(self, row: dict[str, Any]) -> None:
        with self.lock:
            self.messages[str(row.get("campaign_id") or "")].append(row)

    def add_template(self, row: dict[str, Any]) -> None:
        with self.lock:
            self.templates[str(row.get("campaign_message_id") or "")] = row

    def hold(self, unit: Unit) -> None:
        unit.add_part()
        with self.lock:
            self.units.append(unit)

    def of(self, campaign_id: str) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """The campaign's messages, each with its template row (None: the message has none in the input)."""
        with self.lock:
            return [(m, self.templates.get(str(m.get("id")))) for m in self.messages.get(campaign_id, [])]

    def settle(self, campaign_id: str) -> None:
        with self.lock:
            self.settled.add(campaign_id)

    def close(self, reject: Callable[[str, dict[str, Any], str], None]) -> None:
        """The end of the input (once): the message and template rows whose campaign never came, or was never
        settled, are rejected, and their batches settle."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            messages = [m for cid, rows in self.messages.items() if cid not in self.settled for m in rows]
            owned = {str(m.get("id")) for cid, rows in self.messages.items() if cid in self.settled for m in rows}
            templates = [t for mid, t in self.templates.items() if mid not in owned]
            units, self.units = self.units, []
        for message in messages:
            reject("campaign_messages", message, ORPHAN)
        for template in templates:
            reject("campaign_message_template", template, ORPHAN)
        for unit in units:
            unit.part_done()
