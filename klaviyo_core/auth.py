"""Authentication through the SDK's authenticators: a private API key, or OAuth tokens from a refresh token.

Klaviyo rotates refresh tokens: each refresh may answer a new one and retire the old. The authenticator keeps
the newest for the rest of the run and tells `on_rotate` so it can be saved for the next run. One instance
serves every stream and thread of a run (refreshes are locked, so two threads never spend the same token).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import requests
from requests.auth import HTTPBasicAuth
from singer_sdk.authenticators import APIKeyAuthenticator, OAuthAuthenticator
from typing_extensions import override

from klaviyo_core.clock import Clock
from klaviyo_core.errors import KlaviyoAuthError

#: Refresh this long before the access token expires, so no request leaves with a token about to lapse.
REFRESH_MARGIN_S = 60.0


class KlaviyoKeyAuthenticator(APIKeyAuthenticator):
    """`Authorization: Klaviyo-API-Key <key>`; a key cannot be refreshed, so a 401 is final."""

    def __init__(self, api_key: str) -> None:
        super().__init__(key="Authorization", value=f"Klaviyo-API-Key {api_key}", location="header")

    def __repr__(self) -> str:
        return "KlaviyoKeyAuthenticator(***)"

    def invalidate(self) -> bool:
        return False


class KlaviyoOAuthAuthenticator(OAuthAuthenticator):
    """Bearer tokens from `POST {api_url}/oauth/token` (HTTP Basic client credentials, refresh_token grant),
    refreshed shortly before expiry and once after a 401."""

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        timeout: float = 60.0,
        clock: Clock | None = None,
        on_rotate: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(auth_endpoint=token_url, client_id=client_id, client_secret=client_secret)
        self.refresh_token = refresh_token
        self.timeout = timeout
        self.clock = clock or Clock()
        self.on_rotate = on_rotate
        self.expires_at = 0.0
        self.lock = threading.Lock()

    def __repr__(self) -> str:
        return "KlaviyoOAuthAuthenticator(***)"

    @property
    @override
    def oauth_request_body(self) -> dict[str, Any]:
        return {"grant_type": "refresh_token", "refresh_token": self.refresh_token}

    @override
    def is_token_valid(self) -> bool:
        return self.access_token is not None and self.clock.monotonic() < self.expires_at - REFRESH_MARGIN_S

    @override
    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        with self.lock:
            if not self.is_token_valid():
                self.update_access_token()
            request.headers["Authorization"] = f"Bearer {self.access_token}"
        return request

    @override
    def update_access_token(self) -> None:
        """One refresh; a rotated refresh token replaces the old one at once (the old one is spent)."""
        assert self.client_id is not None and self.client_secret is not None
        try:
            response = requests.post(
                self.auth_endpoint,
                auth=HTTPBasicAuth(self.client_id, self.client_secret),
                data=self.oauth_request_payload,
                headers={"Accept": "application/json"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            msg = f"OAuth token refresh failed: could not reach {self.auth_endpoint} ({type(exc).__name__})"
            raise KlaviyoAuthError(msg) from None
        body: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            body = response.json()
        if response.status_code != 200 or "access_token" not in body:
            reason = body.get("error") or f"HTTP {response.status_code}"
            msg = (
                f"OAuth token refresh failed ({reason}, POST /oauth/token): check client_id, client_secret and "
                "refresh_token, or re-authorize the app to get a new refresh token"
            )
            raise KlaviyoAuthError(msg)
        self.access_token = str(body["access_token"])
        self.expires_in = int(float(body.get("expires_in") or 3600))
        self.expires_at = self.clock.monotonic() + self.expires_in
        rotated = body.get("refresh_token")
        if rotated and str(rotated) != self.refresh_token:
            self.refresh_token = str(rotated)
            if self.on_rotate is not None:
                self.on_rotate(self.refresh_token)

    def invalidate(self) -> bool:
        """A 401: the next request fetches a new access token (the caller retries once)."""
        with self.lock:
            self.access_token = None
        return True
