"""The stream's side of retries: the SDK's `request_decorator`, with Klaviyo's waits (api/retry.py).

The SDK wraps every request in `request_decorator`; here each request gets its own `RetryPolicy` (backoff
decorators that name the request in every line about it and pause the endpoint for every thread on a 429),
and a request that needed retries gets one WARNING when it succeeds (each attempt is at DEBUG).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from singer_sdk import RESTStream
from singer_sdk.helpers.types import RequestFunc
from typing_extensions import override

from klaviyo_core import spec
from klaviyo_core.errors import redact
from klaviyo_core.retry import RetryPolicy, log_retry
from tap_klaviyo.reading.progress import RunStats
from tap_klaviyo.reading.run import KlaviyoRun


class RetryHooks(RESTStream[Any]):
    """The SDK's request decorator, for KlaviyoStream."""

    run: KlaviyoRun
    stats: RunStats
    template: str

    @override
    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        """Each call retried under a policy of its own (calls run on several threads at once)."""

        def send(*args: Any, **kwargs: Any) -> Any:
            policy = RetryPolicy(
                clock=self.run.clock,
                where=self.where,
                hold=self.hold,
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

    def hold(self, exc: BaseException, seconds: float) -> None:
        """A 429: pause the endpoint it came from, for every thread."""
        self.run.connection.hold(exc, seconds)

    def on_retry(self, exc: BaseException, attempt: int, wait: float) -> None:
        self.stats.add(retries=1 if attempt else 0, throttled=0 if attempt else 1)
        log_retry(self.logger, redact(self.where(exc), self.run.secrets), exc, attempt, wait)
