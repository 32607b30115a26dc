"""The stream's side of retries: the SDK's backoff decorator with Klaviyo's waits (api/retry.py's RetryPolicy).

The SDK wraps every request in `request_decorator` (backoff); these hooks give it a fresh policy per request,
name the request in every line about it, pause the endpoint for every thread on a 429, and say once, at
DEBUG per attempt and one WARNING when a retried request succeeds, what happened.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import Any
from urllib.parse import urlsplit

import requests
from singer_sdk import RESTStream
from typing_extensions import override

from tap_klaviyo.api import spec
from tap_klaviyo.api.errors import redact
from tap_klaviyo.api.retry import MAX_TRIES, RetryPolicy, log_retry
from tap_klaviyo.reading.progress import RunStats
from tap_klaviyo.reading.run import KlaviyoRun


class RetryHooks(RESTStream[Any]):
    """backoff's hooks of the SDK's request path, for KlaviyoStream."""

    run: KlaviyoRun
    stats: RunStats
    template: str
    #: Per thread: the policy of the request in flight (its retries are summed up when it succeeds).
    parsed: threading.local

    @override
    def backoff_wait_generator(self) -> Generator[float, Any, None]:
        """A fresh policy for each request (backoff calls this once per decorated call, on its thread)."""
        self.parsed.policy = policy = RetryPolicy(
            clock=self.run.clock,
            where=self.where,
            hold=self.hold,
            refresh_token=self.run.authenticator.invalidate,
            on_retry=self.on_retry,
            secrets=self.run.secrets,
        )
        return policy.waits()

    @override
    def backoff_max_tries(self) -> int:
        return MAX_TRIES  # RetryPolicy ends a request long before: 6 failures, or an hour of 429 waits

    @override
    def backoff_jitter(self, value: float) -> float:
        return value  # RetryPolicy jitters where it should (5xx), not where Klaviyo names the wait (429)

    @override
    def backoff_handler(self, details: Any) -> None:
        """RetryPolicy already logged the retry in words (backoff's default logs the request's arguments)."""

    def where(self, exc: BaseException) -> str:
        """`<stream>: <METHOD> <endpoint>` of the request an error came from."""
        request = getattr(exc, "request", None) or getattr(getattr(exc, "response", None), "request", None)
        return self.where_sent(request)

    def where_sent(self, request: Any) -> str:
        if request is None:
            return f"{self.name}: {self.http_method} {self.template}"
        template = spec.match_path(urlsplit(request.url or "").path) or self.template
        return f"{self.name}: {request.method} {template}"

    def hold(self, exc: BaseException, seconds: float) -> None:
        """A 429: pause the endpoint it came from, for every thread."""
        response = getattr(exc, "response", None)
        url = urlsplit(response.request.url or "") if response is not None else urlsplit(self.get_url(None))
        method = response.request.method if response is not None else self.http_method
        limiter = self.run.pacer.for_request(str(method), url.path, url.query)
        if limiter is not None:
            limiter.hold(seconds)

    def on_retry(self, exc: BaseException, attempt: int, wait: float) -> None:
        self.stats.add(retries=1 if attempt else 0, throttled=0 if attempt else 1)
        log_retry(self.logger, redact(self.where(exc), self.run.secrets), exc, attempt, wait)

    def retried(self, response: requests.Response) -> None:
        """A request that needed retries succeeded: one WARNING line with how many and why."""
        policy: RetryPolicy | None = getattr(self.parsed, "policy", None)
        summary = policy.summary() if policy is not None else None
        if summary:
            self.logger.warning("%s: %s", redact(self.where_sent(response.request), self.run.secrets), summary)
            self.parsed.policy = None
