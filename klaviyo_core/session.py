"""The one connection to Klaviyo that both commands build from their settings.

Session and pacing transport (one limiter per endpoint, learned from `RateLimit-*`), the authenticator (API
key, or OAuth with its rotating refresh token saved back), the secrets to redact, the headers, and the 429
hold that pauses an endpoint for every thread. The tap's run and the target's client each own one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from klaviyo_core import __version__
from klaviyo_core.auth import KlaviyoKeyAuthenticator, KlaviyoOAuthAuthenticator
from klaviyo_core.clock import Clock
from klaviyo_core.connection import DEFAULT_API_URL, SECRET_SETTINGS
from klaviyo_core.pacing import PacedAdapter, Pacer, never
from klaviyo_core.spec import SPEC_REVISION
from klaviyo_core.token_store import RefreshTokenStore

JSON_API = "application/vnd.api+json"


def authenticator_for(
    config: Mapping[str, Any], clock: Clock, logger: logging.Logger, config_files: tuple[Path, ...] = ()
) -> KlaviyoKeyAuthenticator | KlaviyoOAuthAuthenticator:
    """The API key's authenticator, or OAuth's refreshing one (a rotated refresh token is saved back)."""
    if config.get("api_key"):
        return KlaviyoKeyAuthenticator(str(config["api_key"]))
    refresh_token = str(config.get("refresh_token") or "")
    return KlaviyoOAuthAuthenticator(
        token_url=str(config.get("api_url") or DEFAULT_API_URL).rstrip("/") + "/oauth/token",
        client_id=str(config.get("client_id") or ""),
        client_secret=str(config.get("client_secret") or ""),
        refresh_token=refresh_token,
        timeout=float(config.get("request_timeout") or 30),
        clock=clock,
        on_rotate=RefreshTokenStore(refresh_token, config_files, logger),
    )


class KlaviyoConnection:
    """What both commands send requests through; `product` names the command in the User-Agent."""

    def __init__(
        self,
        config: Mapping[str, Any],
        logger: logging.Logger,
        *,
        product: str,
        clock: Clock | None = None,
        config_files: tuple[Path, ...] = (),
        check_aborted: Callable[[], None] | None = None,
        urgent: Callable[[], bool] | None = None,
    ) -> None:
        self.clock = clock or Clock()
        self.base_url = str(config.get("api_url") or DEFAULT_API_URL).rstrip("/")
        self.timeout = float(config.get("request_timeout") or 30)
        self.secrets = tuple(str(config[name]) for name in SECRET_SETTINGS if config.get(name))
        self.pacer = Pacer(clock=self.clock)
        self.session = requests.Session()
        adapter = PacedAdapter(
            self.pacer,
            max(1, int(config.get("max_concurrency") or 8)),
            check_aborted or (lambda: None),
            urgent or never,
        )
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.use_environment_once()
        self.authenticator = authenticator_for(config, self.clock, logger, config_files)
        self.user_agent = str(config.get("user_agent") or f"{product}/{__version__}")
        self.revision = str(config.get("revision") or SPEC_REVISION)

    def use_environment_once(self) -> None:
        """The environment's proxy (HTTPS_PROXY, NO_PROXY, ...) and CA bundle (REQUESTS_CA_BUNDLE) for Klaviyo's
        host, read now and kept: with `trust_env`, requests scans every environment variable on each request
        (over a millisecond of CPU a request on a CI runner), and a `.netrc` would add Basic auth beside ours."""
        found = self.session.merge_environment_settings(self.base_url, {}, None, None, None)
        self.session.proxies.update(found["proxies"])
        self.session.verify = found["verify"]
        self.session.trust_env = False

    @property
    def headers(self) -> dict[str, str]:
        """Every request's headers (a body's Content-Type is the caller's)."""
        return {"revision": self.revision, "Accept": JSON_API, "User-Agent": self.user_agent}

    @property
    def refreshable(self) -> bool:
        """Whether a 401 may be cured by a new access token (OAuth), rather than ending the run (a key)."""
        return not isinstance(self.authenticator, KlaviyoKeyAuthenticator)

    def hold(self, exc: BaseException, seconds: float) -> None:
        """Klaviyo said wait (429 + Retry-After): every caller of that endpoint waits, not just this one."""
        response = getattr(exc, "response", None)
        if response is None or response.request is None:
            return
        url = urlsplit(response.request.url or "")
        limiter = self.pacer.for_request(str(response.request.method), url.path, url.query)
        if limiter is not None:
            limiter.hold(seconds)
