"""Errors a user can act on, each rendered as one readable line without secrets."""

from __future__ import annotations

import re
from typing import Any

from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

_SECRETISH = re.compile(r"(Klaviyo-API-Key|Bearer|Basic)\s+\S+", re.IGNORECASE)


def redact(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Remove credentials from text that may end up in a log line or an exception."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _SECRETISH.sub(lambda m: f"{m.group(1)} ***", text)


class KlaviyoUserError(Exception):
    """A problem the user must fix (settings, key, scopes): printed as one line, exit code 1."""


class SettingsError(KlaviyoUserError):
    """Malformed or contradictory settings, found before any request."""


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
