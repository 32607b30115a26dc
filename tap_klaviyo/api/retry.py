"""How a failed request is retried: the wait generator behind the SDK's `request_decorator` (backoff).

Two budgets, as Klaviyo's failures come in two kinds:
- 429 throttling: wait what `Retry-After` says (the whole endpoint pauses, every thread), as long as each wait
  is at most `MAX_RETRY_AFTER_S` and all of them `MAX_THROTTLED_TOTAL_S`; beyond that (a daily cap) stop with a
  message naming when the limit resets, instead of sleeping for hours.
- 5xx, timeouts, dropped connections, truncated bodies: full-jitter exponential backoff, at most `MAX_ATTEMPTS`
  attempts within `MAX_RETRY_ELAPSED_S`, then one line saying what failed.
A 401 with OAuth is retried once with a fresh token.

The waiting itself happens on the run's clock (`Clock.sleep`, or the endpoint's limiter for 429s), so tests
run it on a fake clock; the generator then yields 0 to backoff.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Generator
from datetime import timedelta
from typing import Any

import msgspec
import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from tap_klaviyo.api.clock import Clock
from tap_klaviyo.api.errors import (
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
#: 429s: keep waiting while each Retry-After is at most this, and their sum at most the total.
MAX_RETRY_AFTER_S = 600.0
MAX_THROTTLED_TOTAL_S = 3600.0
#: backoff's own ceiling on tries: never reached before the budgets above end the request.
MAX_TRIES = 1000


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


def backoff_wait(attempt: int) -> float:
    """Full-jitter exponential backoff: spreads the retries of parallel workers apart."""
    return random.uniform(0.5, 1.0) * min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1))


class RetryPolicy:
    """One request's retries (a new policy per decorated call). `where` names stream, method and endpoint."""

    def __init__(
        self,
        *,
        clock: Clock,
        where: Callable[[BaseException], str],
        hold: Callable[[BaseException, float], None],
        refresh_token: Callable[[], bool],
        on_retry: Callable[[BaseException, int, float], None],
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.clock = clock
        self.where = where
        self.hold = hold
        self.refresh_token = refresh_token
        self.on_retry = on_retry
        self.secrets = secrets
        self.failures = 0
        self.throttled_s = 0.0
        self.reauthenticated = False
        self.started = clock.monotonic()
        #: What each retry was for, and how long this request waited in all.
        self.reasons: list[str] = []
        self.waited_s = 0.0

    def waits(self) -> Generator[float, BaseException, None]:
        """backoff's wait generator: sent each exception, yields how long backoff itself sleeps (0)."""
        exc = yield 0.0
        while True:
            self.wait_for(exc)
            exc = yield 0.0

    def wait_for(self, exc: BaseException) -> None:
        """Wait before the next attempt, or raise the error that ends the request."""
        if isinstance(exc, ThrottledError):
            self._throttled(exc)
        elif isinstance(exc, Unauthorized):
            if self.reauthenticated or not self.refresh_token():
                raise KlaviyoAuthError(str(exc)) from None
            self.reauthenticated = True
        else:
            self._failed(exc)

    def _throttled(self, exc: ThrottledError) -> None:
        wait = exc.retry_after
        if wait is None:
            wait = backoff_wait(self.failures + 1)
        if wait > MAX_RETRY_AFTER_S or self.throttled_s + wait > MAX_THROTTLED_TOTAL_S:
            resets = self.clock.now() + timedelta(seconds=wait)
            msg = (
                f"{self.where(exc)}: Klaviyo's rate limit asks for a wait of {wait:.0f} s (after "
                f"{self.throttled_s:.0f} s of waiting already): it resets at {resets:%Y-%m-%d %H:%M} UTC; "
                "stopping instead of sleeping. Run again later."
            )
            raise RateLimitExhausted(msg) from None
        self.throttled_s += wait
        self._retrying(exc, 0, wait)
        self.hold(exc, wait)  # the endpoint pauses for every thread; the next attempt waits in the pacer

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        wait = backoff_wait(self.failures)
        elapsed = self.clock.monotonic() - self.started
        if self.failures >= MAX_ATTEMPTS or elapsed + wait > MAX_RETRY_ELAPSED_S:
            msg = (
                f"{self.where(exc)} failed {self.failures} times in a row; last error: {describe(exc)}. "
                "Klaviyo or the network is unavailable: run again later "
                "(state up to the last emitted record is kept)."
            )
            raise FatalAPIError(redact(msg, self.secrets)) from None
        self._retrying(exc, self.failures, wait)
        self.clock.sleep(wait)

    def _retrying(self, exc: BaseException, attempt: int, wait: float) -> None:
        self.reasons.append("throttled (429)" if isinstance(exc, ThrottledError) else describe(exc))
        self.waited_s += wait
        self.on_retry(exc, attempt, wait)

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
