"""The stream's side of retries: what the SDK's `request_decorator` wraps each request in (klaviyo_core.retry).

The SDK wraps every request in `request_decorator`; the stream hands it to `Retries.decorate`, so each request
gets its own `RetryPolicy` (backoff decorators that name the request in every line about it and pause the
endpoint for every thread on a 429), and a request that needed retries gets one WARNING when it succeeds (each
attempt is at DEBUG).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from singer_sdk.helpers.types import RequestFunc

from klaviyo_core import spec
from klaviyo_core.errors import redact
from klaviyo_core.retry import RetryPolicy, log_retry
from tap_klaviyo.reading.progress import RunStats
from tap_klaviyo.reading.run import KlaviyoRun


@dataclass
class Retries:
    """One stream's retries: its name and endpoint in every line, its counts in its stats."""

    name: str
    http_method: str
    template: str
    run: KlaviyoRun
    stats: RunStats
    logger: logging.Logger

    def decorate(self, func: RequestFunc) -> RequestFunc:
        """Each call retried under a policy of its own (calls run on several threads at once)."""

        def send(*args: Any, **kwargs: Any) -> Any:
            policy = RetryPolicy(
                clock=self.run.clock,
                where=self.where,
                hold=self.run.connection.hold,  # a 429 pauses the endpoint it came from, for every thread
                refresh_token=self.run.connection.authenticator.invalidate,
                on_retry=self.on_retry,
                secrets=self.run.secrets,
            )
            response = policy.decorate(func)(*args, **kwargs)
            summary = policy.summary()
            if summary:
                self.logger.warning("%s: %s", redact(self.where_sent(response.request), self.run.secrets), summary)
            return response

        return send

    def where(self, exc: BaseException) -> str:
        """`<stream>: <METHOD> <endpoint>` of the request an error came from."""
        request = getattr(exc, "request", None) or getattr(getattr(exc, "response", None), "request", None)
        return self.where_sent(request)

    def where_sent(self, request: Any) -> str:
        if request is None:
            return f"{self.name}: {self.http_method} {self.template}"
        template = spec.match_path(urlsplit(request.url or "").path) or self.template
        return f"{self.name}: {request.method} {template}"

    def on_retry(self, exc: BaseException, attempt: int, wait: float) -> None:
        self.stats.add(retries=1 if attempt else 0, throttled=0 if attempt else 1)
        log_retry(self.logger, redact(self.where(exc), self.run.secrets), exc, attempt, wait)
