"""How a failed request is retried: Klaviyo's waits and limits, as backoff decorators.

backoff does the retrying: it counts the tries, keeps the time limits, sleeps and gives up. This module only
says, for each kind of failure, how long to wait and when to stop, and remembers what one request's retries
were for, so a request that needed some gets one line when it succeeds. The tap's streams use it through
the SDK's `request_decorator`, the target's client directly. Three kinds of failure, three decorators
(outermost first):

- 429 throttling: wait what `Retry-After` says (the endpoint pauses for every thread too), as long as each
  wait is at most `MAX_RETRY_AFTER_S` and the request is retried for at most `MAX_THROTTLED_TOTAL_S`; beyond
  that (a daily cap) stop with a message naming when the limit resets, instead of sleeping for hours.
- a 401 with OAuth: retried once, with a fresh token.
- 5xx, timeouts, dropped connections, truncated bodies: full-jitter exponential backoff, at most
  `MAX_ATTEMPTS` attempts within `MAX_RETRY_ELAPSED_S`, then one line saying what failed.

backoff sleeps with `time.sleep` and measures with `time.monotonic`; tests that fake time patch those two.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Generator
from datetime import timedelta
from typing import Any, TypeVar

import backoff
import msgspec
import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from klaviyo_core.clock import Clock
from klaviyo_core.errors import (
    KlaviyoAuthError,
    MalformedBody,
    RateLimitExhausted,
    ThrottledError,
    Unauthorized,
    redact,
)

#: Transient failures: retried with jittered exponential backoff, at most this many attempts.
MAX_ATTEMPTS = 6
#: ...and given up once this long has passed since the first try (a dead API fails within 2 min).
MAX_RETRY_ELAPSED_S = 100.0
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 30.0
#: 429s: keep waiting while each Retry-After is at most this, for at most the total.
MAX_RETRY_AFTER_S = 600.0
MAX_THROTTLED_TOTAL_S = 3600.0

#: What is worth another try (the SDK's own list for its request_decorator).
TRANSIENT: tuple[type[Exception], ...] = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

F = TypeVar("F", bound=Callable[..., Any])


def describe(exc: BaseException) -> str:
    """What went wrong, in words (never the request, which carries credentials)."""
    if isinstance(exc, MalformedBody):
        return "response was not valid JSON (truncated?)"
    if isinstance(exc, RetriableAPIError):
        return str(exc)
    if isinstance(exc, requests.Timeout):
        return "request timed out"
    if isinstance(exc, requests.ConnectionError | ConnectionResetError):
        return "connection failed or dropped"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return "response was cut off"
    if isinstance(exc, ValueError | msgspec.DecodeError):
        return "response was not valid JSON (truncated?)"
    return type(exc).__name__


def half_jitter(value: float) -> float:
    """Full jitter, at least half the step: spreads the retries of parallel workers apart."""
    return random.uniform(0.5, 1.0) * value


def _exponential() -> Generator[float, Any, None]:
    """1, 2, 4 ... 30 s (before jitter): backoff's `expo`, capped."""
    return backoff.expo(base=2, factor=BACKOFF_BASE_S, max_value=BACKOFF_CAP_S)


class RetryPolicy:
    """One request's retries: the decorators, and what they retried (a new policy per request).

    `where` names stream, method and endpoint; `hold` pauses an endpoint for every thread; `giveup` says of
    a failure that it must not be sent again (a write that may have applied), and such failures are raised
    as they are.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        where: Callable[[BaseException], str],
        hold: Callable[[BaseException, float], None],
        refresh_token: Callable[[], bool],
        on_retry: Callable[[BaseException, int, float], None],
        secrets: tuple[str, ...] = (),
        giveup: Callable[[BaseException], bool] | None = None,
    ) -> None:
        self.clock = clock
        self.where = where
        self.hold = hold
        self.refresh_token = refresh_token
        self.on_retry = on_retry
        self.secrets = secrets
        self.final = giveup or (lambda _exc: False)
        self.reauthenticated = False
        #: What each retry was for, and how long this request waited in all.
        self.reasons: list[str] = []
        self.waited_s = 0.0

    def decorate(self, func: F) -> F:
        """`func` retried as Klaviyo's failures ask (see the module's docstring for the order)."""
        transient = backoff.on_exception(
            _exponential,
            TRANSIENT,
            max_tries=MAX_ATTEMPTS,
            max_time=MAX_RETRY_ELAPSED_S,
            jitter=half_jitter,
            giveup=self._not_transient,
            on_backoff=self._retrying,
            on_giveup=self._failed,
            logger=None,
        )
        reauthenticate = backoff.on_exception(
            backoff.constant,
            Unauthorized,
            interval=0,
            max_tries=2,
            jitter=None,
            giveup=self._cannot_refresh,
            on_giveup=self._unauthorized,
            logger=None,
        )
        throttled = backoff.on_exception(
            self._throttle_waits,
            ThrottledError,
            max_time=MAX_THROTTLED_TOTAL_S,
            jitter=None,
            giveup=self._wait_too_long,
            on_backoff=self._throttled,
            on_giveup=self._rate_limit_exhausted,
            logger=None,
        )
        decorated: F = throttled(reauthenticate(transient(func)))
        return decorated

    # -- how long to wait ------------------------------------------------------------------------------

    @staticmethod
    def _throttle_waits() -> Generator[float, BaseException | None, None]:
        """What Klaviyo's Retry-After says (backoff sends each 429 in), else exponential backoff."""
        fallback = _exponential()
        next(fallback)  # expo's own priming value
        exc = yield 0.0  # backoff primes this generator first
        while True:
            retry_after = exc.retry_after if isinstance(exc, ThrottledError) else None
            exc = yield retry_after if retry_after is not None else half_jitter(next(fallback))

    # -- whether to go on ------------------------------------------------------------------------------

    def _not_transient(self, exc: BaseException) -> bool:
        """429s and 401s are the outer decorators'; a write that may have applied is not sent again."""
        return isinstance(exc, ThrottledError | Unauthorized) or self.final(exc)

    def _cannot_refresh(self, exc: BaseException) -> bool:
        if self.reauthenticated:
            return True
        self.reauthenticated = True
        return not self.refresh_token()

    @staticmethod
    def _wait_too_long(exc: BaseException) -> bool:
        retry_after = exc.retry_after if isinstance(exc, ThrottledError) else None
        return retry_after is not None and retry_after > MAX_RETRY_AFTER_S

    # -- backoff's handlers ----------------------------------------------------------------------------

    def _retrying(self, details: Any) -> None:
        self._note(details["exception"], int(details["tries"]), float(details["wait"]))

    def _throttled(self, details: Any) -> None:
        exc, wait = details["exception"], float(details["wait"])
        self._note(exc, 0, wait)
        self.hold(exc, wait)  # the endpoint pauses for every thread, not only this one

    def _note(self, exc: BaseException, attempt: int, wait: float) -> None:
        self.reasons.append("throttled (429)" if isinstance(exc, ThrottledError) else describe(exc))
        self.waited_s += wait
        self.on_retry(exc, attempt, wait)

    def _failed(self, details: Any) -> None:
        exc: BaseException = details["exception"]
        if self._not_transient(exc):
            return  # raised as it is
        msg = (
            f"{self.where(exc)} failed {details['tries']} times in a row; last error: {describe(exc)}. "
            "Klaviyo or the network is unavailable: run again later "
            "(state up to the last emitted record is kept)."
        )
        raise FatalAPIError(redact(msg, self.secrets)) from None

    def _unauthorized(self, details: Any) -> None:
        raise KlaviyoAuthError(str(details["exception"])) from None

    def _rate_limit_exhausted(self, details: Any) -> None:
        exc: BaseException = details["exception"]
        retry_after = exc.retry_after if isinstance(exc, ThrottledError) else None
        wait = retry_after if retry_after is not None else 0.0
        resets = self.clock.now() + timedelta(seconds=wait)
        msg = (
            f"{self.where(exc)}: Klaviyo's rate limit asks for a wait of {wait:.0f} s (after "
            f"{self.waited_s:.0f} s of waiting already): it resets at {resets:%Y-%m-%d %H:%M} UTC; "
            "stopping instead of sleeping. Run again later."
        )
        raise RateLimitExhausted(msg) from None

    def summary(self) -> str | None:
        """One line for a request that needed retries and then succeeded (None when it needed none)."""
        if not self.reasons:
            return None
        counted = Counter(self.reasons)
        why = ", ".join(f"{reason} x{count}" if count > 1 else reason for reason, count in counted.items())
        retries = len(self.reasons)
        noun = "retry" if retries == 1 else "retries"
        return f"succeeded after {retries} {noun} ({why}; {self.waited_s:.1f} s waited)"


def log_retry(logger: logging.Logger, where: str, exc: BaseException, attempt: int, wait: float, **_: Any) -> None:
    """Each attempt at DEBUG, without secrets (the request's outcome gets one line: `RetryPolicy.summary`)."""
    if attempt:
        logger.debug("%s: %s; retry %d of %d in %.1f s", where, describe(exc), attempt, MAX_ATTEMPTS - 1, wait)
    else:
        logger.debug("%s: throttled (429); waiting %.1f s as Klaviyo asks", where, wait)
