"""Rows the target or Klaviyo refused, and what each stream did: the rejects file and the run's summary.

The SDK has no per-record reject channel: a refused row is written here with its reason (never dropped), and
the counts decide the run's exit code.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

from klaviyo_core.documents import encode_document
from target_klaviyo.writing.mirror import NOT_DELETED

OUTCOMES = ("created", "updated", "written", "removed", "unchanged", "rejected", NOT_DELETED)


def _plain(value: Any) -> Any:
    """Dates as ISO text (numbers stay numbers: the encoder writes a Decimal as the number it is)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class Outcomes:
    """Per-stream counts and the rejects file, shared by every sink (drains run on several threads)."""

    def __init__(self, path: str | None, logger: logging.Logger) -> None:
        self.path = Path(path).expanduser() if path else None
        self.logger = logger
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.lock = threading.Lock()
        self.file: TextIO | None = None

    def count(self, stream: str, outcome: str, number: int = 1) -> None:
        if number:
            with self.lock:
                self.counts[stream][outcome] += number

    def reject(self, stream: str, row: dict[str, Any], reason: str) -> None:
        """One refused row: a line in the rejects file, counted, and logged at DEBUG (rows may be personal)."""
        line = encode_document({"stream": stream, "row": _plain(row), "reason": reason}).decode()
        with self.lock:
            self.counts[stream]["rejected"] += 1
            if self.path is not None:
                if self.file is None:
                    self.file = self.path.open("a", encoding="utf-8")
                self.file.write(line + "\n")
                self.file.flush()
        self.logger.debug("%s: rejected a row: %s", stream, reason)

    @property
    def rejected(self) -> int:
        return sum(counter["rejected"] for counter in self.counts.values())

    def summary(self, dry_run: bool) -> list[str]:
        """One line per stream: what it created, updated, wrote, removed, left unchanged, rejected."""
        prefix = "dry run, would have: " if dry_run else ""
        lines = []
        for stream in sorted(self.counts):
            counter = self.counts[stream]
            parts = [f"{counter[name]} {name}" for name in OUTCOMES if counter[name]]
            lines.append(f"{stream}: {prefix}{', '.join(parts) or 'nothing to do'}")
        return lines

    def close(self) -> None:
        with self.lock:
            if self.file is not None:
                self.file.close()
                self.file = None
