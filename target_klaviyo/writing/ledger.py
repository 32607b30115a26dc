"""Which input rows are settled, and which STATE messages may therefore be passed on.

Rows are numbered as they arrive. A hold covers the rows of one sink's batch from its first row until every
row of it is confirmed written or rejected. A STATE message is held back with the number of rows read before
it, and released (to the SDK, which writes it at its next drain) only once no open hold starts before that
number: a STATE line never claims a row Klaviyo has not confirmed.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

Release = Callable[[dict[str, Any]], None]


class Ledger:
    """Row numbers, open holds and held STATE messages (thread-safe: workers close holds)."""

    def __init__(self) -> None:
        self.rows_read = 0
        #: hold number -> the first row it covers.
        self.open_holds: dict[int, int] = {}
        self.hold_numbers = itertools.count()
        #: (rows read before it, the message, the SDK's handler), oldest first.
        self.states: deque[tuple[int, dict[str, Any], Release]] = deque()
        self.lock = threading.Lock()
        #: Set when a hold closes: the reader then checks whether a held STATE can go (a cheap flag per line).
        self.settled = threading.Event()

    def open(self) -> int:
        """A hold starting at the next row to be read."""
        with self.lock:
            number = next(self.hold_numbers)
            self.open_holds[number] = self.rows_read
            return number

    def count_row(self) -> None:
        self.rows_read += 1  # only the reader thread counts rows

    def close(self, hold: int) -> None:
        with self.lock:
            self.open_holds.pop(hold, None)
        self.settled.set()

    def hold_state(self, message: dict[str, Any], release: Release) -> None:
        with self.lock:
            self.states.append((self.rows_read, message, release))
        self.settled.set()

    def release_ready(self) -> int:
        """Pass on every held STATE whose rows are all settled (on the reader thread); how many went."""
        self.settled.clear()
        ready = []
        with self.lock:
            first_open = min(self.open_holds.values(), default=self.rows_read)
            while self.states and self.states[0][0] <= first_open:
                ready.append(self.states.popleft())
        for _rows, message, release in ready:
            release(message)
        return len(ready)
