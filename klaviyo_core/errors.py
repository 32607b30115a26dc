"""Errors a user can act on, each rendered as one readable line without secrets."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import msgspec
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError

from klaviyo_core import spec
from klaviyo_core.documents import check_json

_SECRETISH = re.compile(r"(Klaviyo-API-Key|Bearer|Basic)\s+\S+", re.IGNORECASE)


def redact(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Remove credentials from text that may end up in a log line or an exception."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _SECRETISH.sub(lambda m: f"{m.group(1)} ***", text)


class KlaviyoUserError(Exception):
    """A problem the user must fix (settings, key, scopes): printed as one line, exit code 1."""


class KlaviyoAuthError(KlaviyoUserError, FatalAPIError):
    """The credentials were refused."""


class KlaviyoAPIError(FatalAPIError):
    """A 4xx Klaviyo will answer the same way however often it is asked."""

    def __init__(self, message: str, status: int, scopes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.scopes = scopes


class KlaviyoPermissionError(KlaviyoAPIError, KlaviyoUserError):
    """403: the key lacks a scope the stream needs."""


class ThrottledError(RetriableAPIError):
    """429: wait `retry_after` seconds (None when Klaviyo did not say)."""

    def __init__(self, message: str, response: Any, retry_after: float | None) -> None:
        super().__init__(message, response)
        self.retry_after = retry_after


class RateLimitExhausted(FatalAPIError):
    """Klaviyo asked for a wait longer than a run should sleep (a daily cap)."""


@contextmanager
def one_line_on_user_error(logger: logging.Logger, *more: type[Exception]) -> Iterator[None]:
    """A command's end when the user must act (bad settings, a refused key, a missing scope, a fatal answer, or
    one of `more`): one ERROR line per problem and exit code 1, never a traceback, never a secret."""
    refused: tuple[type[Exception], ...] = (KlaviyoUserError, FatalAPIError, *more)
    try:
        yield
    except ConfigValidationError as exc:
        for problem in exc.errors or [str(exc)]:
            logger.error("%s", redact(str(problem)))
        sys.exit(1)
    except refused as exc:
        logger.error("%s", redact(str(exc)))
        sys.exit(1)


def klaviyo_detail(body: Any) -> str:
    """Klaviyo's own explanation from a JSON:API error body, if there is one."""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            detail = str(first.get("detail") or first.get("title") or first.get("code") or "")
            source = first.get("source") or {}
            where = source.get("parameter") or source.get("pointer") if isinstance(source, dict) else None
            return f"{detail} (at {where})" if where and where not in detail else detail
        if "error" in body:
            return str(body["error"])
    return ""


class Unauthorized(RetriableAPIError):
    """401 with OAuth: worth one retry with a fresh access token (a key's 401 is final)."""


class MalformedBody(RetriableAPIError):
    """A 2xx whose body is not JSON: a truncated transfer, worth another try."""


def check_response(response: Any, *, stream: str, secrets: tuple[str, ...], refreshable: bool) -> None:
    """A 2xx whose body is not JSON (truncated) is retried; any other status is the error it means."""
    status = response.status_code
    if status < 300:
        try:
            check_json(response.content)
        except msgspec.DecodeError:
            raise MalformedBody(f"HTTP {status} with a body that is not valid JSON", response) from None
        return
    raise_for_status(response, stream=stream, secrets=secrets, refreshable=refreshable)


def raise_for_status(response: Any, *, stream: str, secrets: tuple[str, ...], refreshable: bool) -> None:
    """A non-2xx answer as the error it means, in one line naming stream and endpoint (no secrets):
    429 and 5xx are worth retrying, a 401 with OAuth once with a fresh token, the other 4xx never."""
    status = response.status_code
    try:
        body: Any = json.loads(response.content or b"null")
    except ValueError:
        body = None
    detail = klaviyo_detail(body) or (response.reason or "")
    method = str(response.request.method)
    template = spec.match_path(urlsplit(response.request.url or "").path) or urlsplit(response.request.url).path
    where = f"{method} {template}"
    if status == 429:
        raise ThrottledError(f"429 throttled: {detail}", response, _retry_after(response))
    if status >= 500 or status == 408:
        raise RetriableAPIError(f"HTTP {status} {detail[:200]}", response)
    if status == 401:
        msg = redact(
            f"{stream}: authentication failed: Klaviyo answered 401 to {where} ({detail}). "
            "Check api_key (a private key, pk_...) or the OAuth client_id/client_secret/refresh_token.",
            secrets,
        )
        if refreshable:
            raise Unauthorized(msg, response)
        raise KlaviyoAuthError(msg)
    if status == 403:
        scopes = spec.endpoint(template, method.lower()).scopes
        msg = (
            f"{stream}: the key lacks the Klaviyo scope {', '.join(scopes) or '(unknown)'} needed for "
            f"{where} (403: {detail}). Add the scope to the key, or set skip_streams_without_scope."
        )
        raise KlaviyoPermissionError(redact(msg, secrets), status, scopes)
    msg = f"{stream}: Klaviyo rejected {where} with {status}: {detail}"
    raise KlaviyoAPIError(redact(msg, secrets), status)


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
