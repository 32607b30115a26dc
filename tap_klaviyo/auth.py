"""Authentication: a private API key, or OAuth access tokens refreshed from a refresh token.

Access tokens live in memory only. A rotated refresh token replaces the configured one for the rest of the
run and is handed to `on_rotate` (tap_klaviyo.token_store saves it for the next run).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from tap_klaviyo.errors import KlaviyoAuthError

REFRESH_MARGIN_S = 60.0


class ApiKeyAuth(AuthBase):
    """`Authorization: Klaviyo-API-Key <key>`."""

    def __init__(self, api_key: str) -> None:
        self._header = f"Klaviyo-API-Key {api_key}"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request

    def __repr__(self) -> str:
        return "ApiKeyAuth(***)"

    def refresh_after_401(self) -> bool:
        """A key cannot be refreshed: a 401 is final."""
        return False


class OAuthRefreshAuth(AuthBase):
    """Bearer tokens from `POST {api_url}/oauth/token`, refreshed shortly before expiry and after a 401."""

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        timeout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        on_rotate: Callable[[str], None] | None = None,
    ) -> None:
        self._on_rotate = on_rotate
        self._token_url = token_url
        self._basic = HTTPBasicAuth(client_id, client_secret)
        self._refresh_token = refresh_token
        self._timeout = timeout
        self._clock = clock
        self._access_token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.refreshes = 0

    def __repr__(self) -> str:
        return "OAuthRefreshAuth(***)"

    def _refresh(self) -> None:
        try:
            response = requests.post(
                self._token_url,
                auth=self._basic,
                data={"grant_type": "refresh_token", "refresh_token": self._refresh_token},
                headers={"Accept": "application/json"},
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            msg = f"OAuth token refresh failed: could not reach {self._token_url} ({type(exc).__name__})"
            raise KlaviyoAuthError(msg) from None
        body: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            body = response.json()
        if response.status_code != 200 or "access_token" not in body:
            reason = body.get("error") or f"HTTP {response.status_code}"
            msg = (
                f"OAuth token refresh failed ({reason}): check client_id, client_secret and refresh_token, "
                "or re-authorize the app to get a new refresh token"
            )
            raise KlaviyoAuthError(msg)
        self._access_token = str(body["access_token"])
        self._expires_at = self._clock() + float(body.get("expires_in") or 3600)
        rotated = str(body.get("refresh_token") or "")
        if rotated and rotated != self._refresh_token:
            self._refresh_token = rotated
            if self._on_rotate is not None:
                self._on_rotate(rotated)
        self.refreshes += 1

    def token(self) -> str:
        with self._lock:
            if self._access_token is None or self._clock() >= self._expires_at - REFRESH_MARGIN_S:
                self._refresh()
            assert self._access_token is not None
            return self._access_token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request

    def refresh_after_401(self) -> bool:
        """Force a new access token once; the caller retries the request."""
        with self._lock:
            self._access_token = None
        return True
