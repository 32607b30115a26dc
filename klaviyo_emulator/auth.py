"""Private API keys, OAuth clients, refresh/access tokens and scope checks.

Private keys share one rate-limit quota per account; each OAuth client (app installation) gets its own,
as Klaviyo documents. Token expiry uses a monotonic clock so tests can use short ``expires_in`` values.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

DEMO_API_KEY = "pk_demo_emulator_key_0000000000000000"


@dataclass(frozen=True)
class Principal:
    """Who is calling: scopes (None = every scope) and the rate-limit quota it draws from."""

    kind: str
    name: str
    scopes: frozenset[str] | None
    quota: str

    def allows(self, needed: Iterable[str]) -> bool:
        return self.scopes is None or set(needed) <= self.scopes


@dataclass
class OAuthClient:
    client_id: str
    secret: str
    expires_in: int
    rotate: bool
    scopes: frozenset[str] | None
    grace_uses: int = 0


@dataclass
class _Token:
    client_id: str
    expires_at: float
    scopes: frozenset[str] | None


@dataclass
class AuthFailure:
    """Why a request is not authenticated: ``not_authenticated`` (no header) or ``authentication_failed``."""

    code: str
    title: str = field(default="")


class AuthRegistry:
    """Keys, OAuth clients and issued tokens (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.keys: dict[str, frozenset[str] | None] = {DEMO_API_KEY: None}
        self.clients: dict[str, OAuthClient] = {}
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> client id
        # A rotated-away refresh token -> refreshes it still allows (the client's grace_uses).
        self.grace: dict[str, int] = {}
        self.access_tokens: dict[str, _Token] = {}

    def add_api_key(self, key: str, scopes: Iterable[str] | None = None) -> None:
        with self._lock:
            self.keys[key] = None if scopes is None else frozenset(scopes)

    def add_oauth_client(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        expires_in: int = 3600,
        rotate: bool = True,
        scopes: Iterable[str] | None = None,
        grace_uses: int = 0,
    ) -> None:
        """``rotate``: every refresh returns a new refresh token; the one used then still allows
        ``grace_uses`` refreshes (a client that lost the new one recovers once) before it is spent."""
        with self._lock:
            self.clients[client_id] = OAuthClient(
                client_id, client_secret, expires_in, rotate, None if scopes is None else frozenset(scopes), grace_uses
            )
            self.refresh_tokens[refresh_token] = client_id

    def authenticate(self, header: str | None) -> Principal | AuthFailure:
        if not header or not header.strip():
            return AuthFailure("not_authenticated")
        scheme, _, credential = header.strip().partition(" ")
        credential = credential.strip()
        with self._lock:
            if scheme == "Klaviyo-API-Key" and credential in self.keys:
                return Principal("api_key", credential, self.keys[credential], "private-keys")
            if scheme == "Bearer":
                token = self.access_tokens.get(credential)
                if token is not None and token.expires_at > self._clock():
                    return Principal("oauth", token.client_id, token.scopes, f"oauth:{token.client_id}")
        return AuthFailure("authentication_failed")

    def token_endpoint(self, authorization: str | None, content_type: str, body: str) -> tuple[int, dict[str, Any]]:
        """``POST /oauth/token`` (refresh_token grant): status and JSON body."""
        client = self._client_from_basic(authorization)
        if client is None:
            return 401, {"error": "invalid_client"}
        if "application/x-www-form-urlencoded" not in (content_type or ""):
            return 400, {"error": "invalid_grant_type"}
        form = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        refresh = form.get("refresh_token", "")
        with self._lock:
            if self.refresh_tokens.get(refresh) != client.client_id:
                return 400, {"error": "invalid_grant"}  # unknown, revoked, or already rotated away
            access = "kat_" + secrets.token_urlsafe(24)
            self.access_tokens[access] = _Token(client.client_id, self._clock() + client.expires_in, client.scopes)
            new_refresh = refresh
            if client.rotate:
                grace = self.grace.pop(refresh, client.grace_uses)
                if grace > 0:
                    self.grace[refresh] = grace - 1
                else:
                    del self.refresh_tokens[refresh]
                new_refresh = "krt_" + secrets.token_urlsafe(24)
                self.refresh_tokens[new_refresh] = client.client_id
        scope = " ".join(sorted(client.scopes)) if client.scopes is not None else "all"
        return 200, {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": client.expires_in,
            "refresh_token": new_refresh,
            "scope": scope,
        }

    def _client_from_basic(self, authorization: str | None) -> OAuthClient | None:
        if not authorization or not authorization.startswith("Basic "):
            return None
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, _, secret = decoded.partition(":")
        with self._lock:
            client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(client.secret, secret):
            return None
        return client
