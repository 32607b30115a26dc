"""The settings that say how to reach Klaviyo, shared by the tap and the target: credentials, URL, revision,
concurrency, timeouts; their schema properties and their checks (one readable line each)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from singer_sdk import typing as th

from klaviyo_core.spec import SPEC_REVISION

DEFAULT_API_URL = "https://a.klaviyo.com"
_REVISION = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.[A-Za-z0-9_-]+)?$")
SECRET_SETTINGS = ("api_key", "client_secret", "refresh_token")
OAUTH_SETTINGS = ("client_id", "client_secret", "refresh_token")

#: Credentials, URL and revision (first in the settings), and concurrency, user agent, timeout (last).
CONNECTION_HEAD: list[th.Property[Any]] = [
    th.Property(
        "api_key",
        th.StringType,
        secret=True,
        title="Private API key",
        description="A Klaviyo private API key (pk_...), sent as `Authorization: Klaviyo-API-Key`. "
        "Use this or the three OAuth settings, not both.",
    ),
    th.Property("client_id", th.StringType, title="OAuth client ID", description="OAuth app client ID."),
    th.Property(
        "client_secret",
        th.StringType,
        secret=True,
        title="OAuth client secret",
        description="OAuth app secret.",
    ),
    th.Property(
        "refresh_token",
        th.StringType,
        secret=True,
        title="OAuth refresh token",
        description="Refresh token of the app's installation; access tokens are refreshed from it in memory.",
    ),
    th.Property(
        "api_url",
        th.StringType,
        default=DEFAULT_API_URL,
        title="API URL",
        description="Base URL of the Klaviyo API. Plain http:// is accepted only for a loopback host.",
    ),
    th.Property(
        "revision",
        th.StringType,
        default=SPEC_REVISION,
        title="API revision",
        description="Klaviyo API revision header (YYYY-MM-DD with an optional .suffix).",
    ),
]
CONNECTION_TAIL: list[th.Property[Any]] = [
    th.Property(
        "max_concurrency",
        th.IntegerType(minimum=1, maximum=64),
        default=8,
        title="Max concurrency",
        description="Requests in flight at once (within Klaviyo's per-endpoint limits); 1 is sequential.",
    ),
    th.Property(
        "user_agent",
        th.StringType,
        title="User agent",
        description="User-Agent header sent to Klaviyo.",
    ),
    th.Property(
        "request_timeout",
        th.IntegerType(minimum=1),
        default=30,
        title="Request timeout",
        description="Seconds to wait for one HTTP response before retrying.",
    ),
]
CONNECTION_SETTINGS = tuple(prop.name for prop in [*CONNECTION_HEAD, *CONNECTION_TAIL])


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connection_errors(config: Mapping[str, Any]) -> list[str]:
    """Every problem in the connection settings, one readable line each (what is wrong, what to do)."""
    errors: list[str] = []
    has_key = bool(config.get("api_key"))
    oauth = [name for name in OAUTH_SETTINGS if config.get(name)]
    if has_key and oauth:
        errors.append(
            "both api_key and OAuth settings (" + ", ".join(oauth) + ") are set: configure exactly one way "
            "to authenticate"
        )
    elif not has_key and not oauth:
        errors.append(
            "no credentials: set api_key (a Klaviyo private key) or client_id, client_secret and refresh_token"
        )
    elif oauth and len(oauth) < len(OAUTH_SETTINGS):
        missing = [name for name in OAUTH_SETTINGS if name not in oauth]
        errors.append(f"OAuth needs client_id, client_secret and refresh_token: {', '.join(missing)} missing")

    api_url = str(config.get("api_url") or DEFAULT_API_URL)
    parts = urlsplit(api_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        errors.append(f"api_url {api_url!r} is not an http(s) URL: use https://a.klaviyo.com")
    elif parts.scheme == "http" and not _is_loopback(parts.hostname):
        errors.append(f"api_url {api_url!r} uses plain http to a non-loopback host: use https://")

    revision = str(config.get("revision") or SPEC_REVISION)
    match = _REVISION.match(revision)
    try:
        if not match:
            raise ValueError
        datetime.strptime(match.group(1), "%Y-%m-%d")
    except ValueError:
        errors.append(f"revision {revision!r} is not YYYY-MM-DD[.suffix]: use e.g. {SPEC_REVISION}")

    return errors
