"""Per-endpoint request pacing shared by every stream and thread of a run.

Klaviyo limits each endpoint per account with a 1-second burst window, a 1-minute steady window and, for
reports, a daily cap. Pacing below those limits costs less than recovering from 429s.

The spec publishes the limits, but they are per account and shared by every app and key on it, and an account's
may be lower. Every response says what is true for this account (`RateLimit-Limit`: the steady limit,
`RateLimit-Remaining`, `RateLimit-Reset`: seconds until the steady window resets), so each endpoint's limiter
adopts them, and the run's first response tells the others what to expect before they hear for themselves.
"""

from __future__ import annotations

import io
import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
import urllib3
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter

from klaviyo_core import spec
from klaviyo_core.clock import Clock
from klaviyo_core.errors import RateLimitExhausted

# The server counts a request when it arrives, and latency varies: a slightly longer client-side window
# keeps jittered arrivals inside Klaviyo's fixed windows.
BURST_WINDOW_S = 1.15
#: A write's body takes its own time to leave (a 5 MB import job, a busy process's threads): its endpoint's
#: second is counted a little wider still.
WRITE_BURST_WINDOW_S = 1.3
STEADY_WINDOW_S = 61.0
#: Klaviyo's steady window is fixed: a minute that resets at the moment each response's `RateLimit-Reset`
#: tells (whole seconds, counted when the request arrived). Once told, the limiter counts requests per such
#: minute, not per sliding minute, so a new window's requests go when it opens: a minute-bound endpoint
#: sends its second minute's requests at once, not spread as its first minute's were.
FIXED_WINDOW_S = 60.0
#: The next window is entered this long after the reported reset (rounding, clock skew) ...
RESET_MARGIN_S = 1.0
#: ... and until a response from the new window says what is left, requests sent this long before it opened
#: may have arrived in it: they count in both.
EDGE_S = 2.0


class DailyLimitReached(RateLimitExhausted):
    """The endpoint's daily budget is spent; waiting would mean sleeping until UTC midnight."""

    def __init__(self, endpoint: str, resets_at: datetime) -> None:
        self.endpoint = endpoint
        self.resets_at = resets_at
        super().__init__(
            f"Klaviyo's daily limit for {endpoint} is used up; it resets at {resets_at:%Y-%m-%d %H:%M} UTC"
        )


@dataclass
class Limiter:
    """One endpoint's limiter: at most `burst` per (sliding) second, and `steady` per minute: per Klaviyo's fixed
    minute once a response has told when it ends, per sliding minute until then."""

    name: str
    burst: int
    steady: int
    daily: int | None = None
    #: The client-side second this endpoint's burst is counted over (wider than Klaviyo's, see above).
    burst_window: float = BURST_WINDOW_S
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    #: The wall clock that tells the UTC day the daily cap counts in (the run's Clock: a fake one in tests).
    wall: Callable[[], datetime] = field(default_factory=lambda: Clock().now)
    _recent: deque[float] = field(default_factory=deque)
    _held_until: float = 0.0
    _day: str = ""
    _day_count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    waited_s: float = 0.0
    #: The limits the spec publishes (the learned ones are scaled from these).
    published: tuple[int, int] = (0, 0)
    #: This endpoint's own response has told its limit (not only another endpoint's).
    told: bool = False
    #: When the server's current steady window ends, once a response has said (None: count a sliding minute).
    _window_end: float | None = None
    #: What each answer from the current window implies others (other apps and keys of the account, requests
    #: of ours sent before it opened) have spent of it: the server's count less ours.
    _others: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.published == (0, 0):
            self.published = (self.burst, self.steady)

    def _wait_needed(self, now: float) -> float:
        recent = self._recent
        while recent and recent[0] <= now - FIXED_WINDOW_S - EDGE_S - RESET_MARGIN_S:
            recent.popleft()
        wait = self._held_until - now
        self._roll(now)
        if self._window_end is not None:
            opened = self._window_end - FIXED_WINDOW_S
            if self._others:
                spent = _count_since(recent, opened) + max(0, int(statistics.median(self._others)))
            else:  # not told yet: requests sent just before it opened may have arrived in it
                spent = _count_since(recent, opened - EDGE_S)
            if spent >= self.steady:
                wait = max(wait, self._window_end - now)
        elif len(recent) >= self.steady and recent[len(recent) - self.steady] > now - STEADY_WINDOW_S:
            wait = max(wait, recent[len(recent) - self.steady] + STEADY_WINDOW_S - now)
        if len(recent) >= self.burst:
            wait = max(wait, recent[len(recent) - self.burst] + self.burst_window - now)
        return wait

    def _roll(self, now: float) -> None:
        """Past the known window's end: the next window, whose first answer says what others spent of it."""
        while self._window_end is not None and now >= self._window_end:
            self._window_end += FIXED_WINDOW_S
            self._others = []

    def acquire(self) -> None:
        """Block until one more request fits every window, then count it."""
        while True:
            wait = self.try_acquire()
            if wait <= 0:
                return
            self.sleep(wait)

    def try_acquire(self) -> float:
        """Count one more request if it fits every window now (0.0); else how long until it might."""
        with self._lock:
            now = self.clock()
            wait = self._wait_needed(now)
            if wait <= 0:
                self._count_daily()
                self._recent.append(now)
                return 0.0
            self.waited_s += wait
            return wait

    def _count_daily(self) -> None:
        if self.daily is None:
            return
        now = self.wall().astimezone(timezone.utc)
        today = now.strftime("%Y-%m-%d")
        if today != self._day:
            self._day, self._day_count = today, 0
        if self._day_count >= self.daily:
            midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
            raise DailyLimitReached(self.name, midnight + timedelta(days=1))
        self._day_count += 1

    def hold(self, seconds: float) -> None:
        """Pause every caller of this endpoint: the server said so (429 + Retry-After)."""
        with self._lock:
            self._held_until = max(self._held_until, self.clock() + seconds)

    def adopt(self, limit: int | None, remaining: int | None, reset: float | None, sent_at: float | None) -> None:
        """What the server reported in answer to a request this limiter let go at `sent_at`.

        `limit` (per minute) becomes the steady limit, and the burst is scaled by the same ratio (Klaviyo reports
        only the steady one). `reset` tells when the fixed window ends. `remaining`, less what this limiter had
        sent in the window up to that request, is what others spent of it. Requests sent together arrive in any
        order, so one answer may count a request sent after it, or miss one sent before: the median of the
        window's answers is taken."""
        with self._lock:
            if limit is not None and limit > 0:
                self.told = True
                self._scale_to(limit)
            if remaining is None or reset is None:
                return
            now = self.clock()
            self._roll(now)
            ends = now + min(max(reset, 0.0), FIXED_WINDOW_S) + RESET_MARGIN_S
            self._learn_window_end(ends)
            assert self._window_end is not None
            if abs(ends - self._window_end) > FIXED_WINDOW_S / 2:
                return  # an answer about another window than the one being counted
            opened = self._window_end - FIXED_WINDOW_S
            upto = sent_at if sent_at is not None else now
            ours = sum(1 for t in self._recent if opened <= t <= upto)
            self._others.append(self.steady - remaining - ours)

    def _learn_window_end(self, told: float) -> None:
        """The steady window's end as this response tells it. Each telling is at or after the true end (the
        server rounds up, and counted when the request arrived), so the earliest, in minutes' steps, is best."""
        known = self._window_end
        if known is None:
            self._window_end = told
            return
        told -= FIXED_WINDOW_S * round((told - known) / FIXED_WINDOW_S)
        self._window_end = min(known, told)

    def assume(self, ratio: float) -> None:
        """The account's limits are `ratio` times the published ones (another endpoint said so); this
        endpoint's own first response corrects it."""
        with self._lock:
            if not self.told:
                self._scale_to(max(1, int(self.published[1] * ratio + 1e-9)))

    def _scale_to(self, steady: int) -> None:
        burst, published = self.published
        self.steady = steady
        self.burst = max(1, int(burst * steady / published + 1e-9)) if published else burst


class Pacer:
    """The run's limiters, one per endpoint, created on first use from the spec's limits."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._limiters: dict[str, Limiter] = {}
        self._lock = threading.Lock()
        self.clock = clock or Clock()
        #: The account's limits over the published ones, once a response has said (None: not yet).
        self.ratio: float | None = None
        self._calibration = threading.Condition()
        self._probing = False

    def limiter(
        self, key: str, burst: int, steady: int, daily: int | None = None, burst_window: float = BURST_WINDOW_S
    ) -> Limiter:
        with self._lock:
            found = self._limiters.get(key)
            if found is None:
                found = Limiter(
                    key,
                    burst,
                    steady,
                    daily,
                    burst_window,
                    clock=self.clock.monotonic,
                    sleep=self.clock.sleep,
                    wall=self.clock.now,
                )
                if self.ratio is not None:
                    found.assume(self.ratio)
                self._limiters[key] = found
            return found

    # -- the run's first response: how this account's limits compare with the published ones --------------

    def probe(self, check_aborted: Callable[[], None]) -> bool:
        """Before the run knows the account's limits, one request at a time goes first (True: this one), so
        a run starting on every endpoint at once does not spend the published burst of an account that has
        less. Costs one round trip per run."""
        with self._calibration:
            while self.ratio is None:
                if not self._probing:
                    self._probing = True
                    return True
                check_aborted()
                self._calibration.wait(0.2)
            return False

    def probed(self, limiter: Limiter | None, response: Response | None) -> None:
        """The probe's answer: its limit sets the account's ratio (a server without the headers: 1)."""
        with self._calibration:
            self._probing = False
            if response is not None and limiter is not None and limiter.told:
                self.learn(limiter.steady / limiter.published[1] if limiter.published[1] else 1.0)
            elif response is not None and response.status_code < 400:
                self.learn(1.0)
            self._calibration.notify_all()

    def learn(self, ratio: float) -> None:
        """Endpoints not heard from yet expect this account's ratio of their published limits."""
        self.ratio = ratio
        if ratio != 1.0:
            for limiter in self.limiters():
                limiter.assume(ratio)

    def for_request(self, method: str, path: str, query: str = "") -> Limiter | None:
        """The limiter of the endpoint a request goes to (None: not a Klaviyo API path, e.g. OAuth)."""
        template = spec.match_path(path)
        if template is None:
            return None
        rules = spec.endpoint(template, method.lower())
        burst, steady, daily = rules.rate
        key = f"{method.upper()} {template}"
        if "predictive_analytics" in unquote(query):  # Klaviyo limits profiles with predictions more tightly
            burst, steady = 10, 150
            key += " predictive"
        window = BURST_WINDOW_S if method.upper() == "GET" else WRITE_BURST_WINDOW_S
        return self.limiter(key, burst, steady, daily, window)

    def limiters(self) -> list[Limiter]:
        with self._lock:
            return list(self._limiters.values())


#: Endpoints allowing at most this many requests a minute are tight: the run's length hangs on their minutes.
TIGHT_STEADY_LIMIT = 150


def never() -> bool:
    return False


class Slots:
    """At most `size` requests on the wire. When one ends, a request to a tight endpoint goes next: a slot a
    big backfill takes from it costs that endpoint a request its minute never gets back, while the backfill's
    own endpoint has room to spare. Then an urgent request (one the record writer waits on: the window being
    written): every other fetch-ahead request only fills the spool, while the writer idles on this one."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._used = 0
        self._waiting = [0, 0, 0]  # tight, urgent, others
        self._cond = threading.Condition()

    @property
    def waiting(self) -> tuple[int, int, int]:
        """Requests waiting for a slot: (tight, urgent, others)."""
        with self._cond:
            tight, urgent, others = self._waiting
            return tight, urgent, others

    def acquire(self, tight: bool, check_aborted: Callable[[], None], urgent: Callable[[], bool] = never) -> None:
        """Wait for a free slot that no better-ranked request waits for. Urgency can change while a request
        waits (the writer reaches its window), so it is asked again on every wake-up."""
        with self._cond:
            rank = 0 if tight else (1 if urgent() else 2)
            self._waiting[rank] += 1
            try:
                while self._used >= self.size or any(self._waiting[:rank]):
                    check_aborted()
                    self._cond.wait(0.2)
                    if rank and rank != (now := 1 if urgent() else 2):
                        self._waiting[rank] -= 1
                        rank = now
                        self._waiting[rank] += 1
                self._used += 1
            finally:
                self._waiting[rank] -= 1

    def release(self) -> None:
        with self._cond:
            self._used -= 1
            self._cond.notify_all()


class PacedAdapter(HTTPAdapter):
    """The session's transport: each request leaves only when a slot is free (at most `max_concurrency` on
    the wire) and its endpoint's limiter counts it at that moment, so requests are paced when they leave, not
    when they queue. Requests' own hook for this is the transport adapter; streams and threads share it.

    The body is read in one call (requests reads 10 KB at a time, each read a system call after which every
    other thread contends for the GIL) and handed to requests as an in-memory stream.
    """

    def __init__(
        self, pacer: Pacer, slots: int, check_aborted: Callable[[], None], urgent: Callable[[], bool] = never
    ) -> None:
        super().__init__(pool_connections=4, pool_maxsize=max(32, slots))
        self.pacer = pacer
        self.slots = Slots(slots)
        self.check_aborted = check_aborted
        #: Whether the calling thread's request is one the record writer waits on.
        self.urgent = urgent

    def send(  # type: ignore[override]
        self, request: PreparedRequest, stream: bool = False, timeout: Any = None, **kwargs: Any
    ) -> Response:
        split = urlsplit(request.url or "")
        limiter = self.pacer.for_request(request.method or "GET", split.path, split.query)
        probe = limiter is not None and self.pacer.ratio is None and self.pacer.probe(self.check_aborted)
        response: Response | None = None
        try:
            with self._slot(limiter):
                sent_at = limiter.clock() if limiter is not None else None
                response = super().send(request, stream=True, timeout=timeout, **kwargs)
                if not stream:
                    response.raw = io.BytesIO(_read_whole(response))
            if limiter is not None:
                respect_quota_headers(response, limiter, sent_at)
        finally:
            if probe:
                self.pacer.probed(limiter, response)
        return response

    @contextmanager
    def _slot(self, limiter: Limiter | None) -> Iterator[None]:
        """A free slot, and the limiter's consent; a request the limiter holds back gives its slot up."""
        tight = limiter is not None and limiter.published[1] <= TIGHT_STEADY_LIMIT
        while True:
            self.check_aborted()
            self.slots.acquire(tight, self.check_aborted, self.urgent)
            try:
                wait = limiter.try_acquire() if limiter is not None else 0.0
            except BaseException:
                self.slots.release()
                raise
            if wait <= 0:
                break
            self.slots.release()
            if limiter is not None:
                limiter.sleep(wait)  # the limiter's clock: a fake one in tests
        try:
            yield
        finally:
            self.slots.release()


def _count_since(times: deque[float], since: float) -> int:
    """How many of the (ascending) times are at or after `since`."""
    count = 0
    for sent in reversed(times):
        if sent < since:
            break
        count += 1
    return count


def _read_whole(response: Response) -> bytes:
    """The body in one read; errors are requests' own, as `Response.content` would raise them."""
    raw = response.raw
    try:
        body = bytes(raw.read(decode_content=True) or b"")
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.exceptions.ReadTimeout(exc) from exc
    except urllib3.exceptions.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise requests.exceptions.ConnectionError(exc) from exc
    finally:
        response.close()  # back to the pool when the body was read; closed otherwise
    return body


def respect_quota_headers(response: Response, limiter: Limiter, sent_at: float | None = None) -> None:
    """Klaviyo's word on this account's limit for the endpoint and on what is left of its window (other
    integrations share the quota): the limiter adopts it, so it neither spends requests on 429s nor paces by
    published numbers the account does not have. A 429 carries none of these (its Retry-After holds the
    endpoint instead)."""
    headers = response.headers
    limiter.adopt(
        _number(headers.get("RateLimit-Limit"), int),
        _number(headers.get("RateLimit-Remaining"), int),
        _number(headers.get("RateLimit-Reset"), float),
        sent_at,
    )


def _number(value: str | None, kind: Callable[[float], Any]) -> Any:
    """A header's number, or None when absent or not a number."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return kind(number) if math.isfinite(number) else None
