"""Injected failures: random faults at a configured rate, and exact responses queued by tests.

Fault kinds: ``"500"``, ``"502_html"`` (HTML body, like a proxy page), ``"503"``, ``"504"``,
``"truncated"`` (200 with half the body and a matching Content-Length), ``"drop"`` (socket closed with no
response) and ``"timeout"`` (stall, then close).
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("500", "502_html", "503", "504", "truncated", "drop", "timeout")
NO_RESPONSE_KINDS = ("drop", "timeout")

HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
)
_SERVER_ERRORS = {
    500: ("error", "A server error occurred.", "A server error occurred."),
    502: ("bad_gateway", "Bad gateway.", "Bad gateway."),
    503: (
        "service_unavailable",
        "Service unavailable.",
        "The service is temporarily unavailable, try again later.",
    ),
    504: ("gateway_timeout", "Gateway timeout.", "The upstream service timed out."),
}


@dataclass
class ForcedResponse:
    """A response a test wants served next, instead of the real answer.

    ``kind`` may be ``"drop"``, ``"timeout"`` or ``"truncated"`` (serve the real answer cut in half) or
    ``"502_html"``; otherwise ``status``/``body``/``headers`` are sent (a default JSON:API error body when
    ``body`` is None and the status is an error). ``retry_after`` adds a ``Retry-After`` header.
    ``applied``: the request is carried out first, then this answer replaces its own (a write whose answer
    was lost: the caller cannot tell whether it happened).
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: int | None = None
    kind: str | None = None
    applied: bool = False


@dataclass
class _Forced:
    prefix: str
    method: str | None
    queue: deque[ForcedResponse]


def fault_label(forced: ForcedResponse) -> str:
    """How a forced response shows in the request log's ``fault`` field."""
    label = f"{forced.kind or forced.status}-forced"
    return f"{label}-applied" if forced.applied else label


def server_error(status: int) -> tuple[str, str, str]:
    return _SERVER_ERRORS.get(status, ("error", "A server error occurred.", "A server error occurred."))


class FaultPlan:
    """Forced-response queues plus the seeded random fault source."""

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(f"faults:{seed}")
        self._forced: list[_Forced] = []

    def force(self, path_prefix: str, responses: Iterable[ForcedResponse], method: str | None = "GET") -> None:
        with self._lock:
            prefix = path_prefix.rstrip("/") or "/"
            self._forced.append(_Forced(prefix, method.upper() if method else None, deque(responses)))

    def clear(self) -> None:
        with self._lock:
            self._forced.clear()

    def take_forced(self, method: str, path: str) -> ForcedResponse | None:
        """Next queued response whose prefix matches (``/api/flows`` matches ``/api/flows/`` and below)."""
        norm = path.split("?", 1)[0]
        with self._lock:
            for entry in self._forced:
                if entry.method is not None and entry.method != method.upper():
                    continue
                if entry.queue and (norm == entry.prefix or norm.startswith(entry.prefix.rstrip("/") + "/")):
                    forced = entry.queue.popleft()
                    if not entry.queue:
                        self._forced.remove(entry)
                    return forced
        return None

    def roll(self, rate: float, kinds: Sequence[str]) -> str | None:
        """A random fault kind with probability ``rate`` (seeded, so runs are repeatable)."""
        if rate <= 0 or not kinds:
            return None
        with self._lock:
            if self._rng.random() >= rate:
                return None
            return kinds[self._rng.randrange(len(kinds))]

    def jitter(self, spread: float) -> float:
        """A uniform offset in [-spread, spread] from the seeded source (latency jitter)."""
        if spread <= 0:
            return 0.0
        with self._lock:
            return self._rng.uniform(-spread, spread)

    def chance(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate
