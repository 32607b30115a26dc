"""The target's requests, outside the SDK's stream loop, on the same `KlaviyoConnection` the tap's run builds.

The connection brings the pacing transport (one limiter per endpoint, learned from `RateLimit-*`), the
authenticator (API key or rotating OAuth tokens) and the 429 hold; here are `raise_for_status` for one
readable line and `RetryPolicy`'s backoff decorators (Retry-After honoured). A write that may have been
applied before it failed (a timeout, a 5xx after the body was sent) is retried only when the caller says the
write is idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from singer_sdk.exceptions import RetriableAPIError

from klaviyo_core import spec
from klaviyo_core.clock import Clock
from klaviyo_core.documents import encode_document
from klaviyo_core.errors import MalformedBody, ThrottledError, raise_for_status, redact
from klaviyo_core.retry import TRANSIENT, RetryPolicy, log_retry
from klaviyo_core.session import JSON_API, KlaviyoConnection


class AmbiguousWrite(Exception):
    """A write that may or may not have been applied, and is not safe to send again."""


def ambiguous(exc: BaseException) -> bool:
    """Whether the request may have reached Klaviyo and been applied (no answer, or a 5xx)."""
    if isinstance(exc, ThrottledError):
        return False  # a 429 is refused before anything is done
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError) and "Connection refused" in str(exc):
        return False
    return isinstance(exc, RetriableAPIError | requests.RequestException)


class KlaviyoClient:
    """Requests to Klaviyo's API with the run's pacing, auth and retries; `requests` counts what was sent."""

    def __init__(
        self,
        config: Mapping[str, Any],
        logger: logging.Logger,
        clock: Clock | None = None,
        config_files: tuple[Path, ...] = (),
    ) -> None:
        self.logger = logger
        #: The one connection (session, pacing, auth, secrets, headers) the tap builds the same way.
        self.connection = KlaviyoConnection(
            config, logger, product="target-klaviyo", clock=clock, config_files=config_files
        )
        self.clock = self.connection.clock
        self.secrets = self.connection.secrets
        self.headers = {**self.connection.headers, "Content-Type": JSON_API}
        self.requests = 0

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool = True,
        what: str = "",
    ) -> requests.Response:
        """One call, retried as `RetryPolicy` says; raises `AmbiguousWrite` where a retry could apply it twice."""
        template = spec.match_path(urlsplit(path).path) or path

        def where(_exc: BaseException) -> str:
            return f"{what}: {method} {template}"

        def give_up(exc: BaseException) -> bool:
            return not idempotent and method != "GET" and ambiguous(exc)

        policy = RetryPolicy(
            clock=self.clock,
            where=where,
            hold=self.connection.hold,
            refresh_token=self.connection.authenticator.invalidate,
            on_retry=lambda exc, attempt, wait: log_retry(self.logger, where(exc), exc, attempt, wait),
            secrets=self.secrets,
            giveup=give_up,
        )
        try:
            response: requests.Response = policy.decorate(self._send)(method, path, body, params, what)
        except TRANSIENT as exc:
            if give_up(exc):
                raise AmbiguousWrite(
                    redact(f"{where(exc)} failed ({exc}); it may or may not have applied", self.secrets)
                ) from None
            raise
        summary = policy.summary()
        if summary:
            self.logger.warning("%s: %s", where(RuntimeError()), summary)
        return response

    def _send(
        self, method: str, path: str, body: Any, params: Mapping[str, str] | None, what: str
    ) -> requests.Response:
        url = path if path.startswith("http") else self.connection.base_url + path
        data = body if body is None or isinstance(body, bytes) else encode_document(body)
        request = requests.Request(method, url, data=data, params=params, headers=self.headers)
        connection = self.connection
        prepared = connection.authenticator(connection.session.prepare_request(request))
        self.requests += 1
        response = connection.session.send(prepared, timeout=connection.timeout)
        if response.status_code >= 300:
            raise_for_status(
                response,
                stream=what,
                secrets=self.secrets,
                refreshable=connection.refreshable,
            )
        if response.content and response.status_code != 204:
            try:
                response.json()
            except ValueError:
                raise MalformedBody(
                    f"HTTP {response.status_code} with a body that is not valid JSON", response
                ) from None
        return response

    def pages(self, path: str, params: Mapping[str, str] | None = None, what: str = "") -> list[dict[str, Any]]:
        """Every resource of a collection, following `links.next`."""
        return list(self.resources(path, params, what))

    def resources(self, path: str, params: Mapping[str, str] | None = None, what: str = "") -> Iterator[dict[str, Any]]:
        """A collection's resources as its pages come (a caller that has seen enough stops asking)."""
        url: str | None = path
        query: Mapping[str, str] | None = params
        while url:
            doc = self.request("GET", url, params=query, what=what).json()
            yield from doc.get("data") or []
            url, query = (doc.get("links") or {}).get("next"), None
