"""The one connection both commands build (klaviyo_core/session.py): the environment's proxy and CA settings
are honoured, read once, and a `.netrc` never adds credentials of its own."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from klaviyo_core.session import KlaviyoConnection
from klaviyo_emulator import DEMO_API_KEY, Emulator

LOGGER = logging.getLogger("test-connection")


def connection(api_url: str) -> KlaviyoConnection:
    return KlaviyoConnection({"api_key": DEMO_API_KEY, "api_url": api_url}, LOGGER, product="test")


def test_requests_go_through_the_environments_proxy(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY names the emulator; the API's host does not resolve: only the proxy can answer."""
    monkeypatch.setenv("HTTP_PROXY", emulator.base_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    link = connection("http://klaviyo.invalid")
    monkeypatch.delenv("HTTP_PROXY")  # read once, when the connection was built
    emulator.clear_log()
    response = link.session.get(
        "http://klaviyo.invalid/api/accounts",
        headers={**link.headers, "Authorization": f"Klaviyo-API-Key {DEMO_API_KEY}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text[:300]
    assert response.json()["data"][0]["type"] == "account"
    assert [e.template for e in emulator.requests] == ["/api/accounts"]


def test_no_proxy_and_ca_bundle_are_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("NO_PROXY", "")
    proxied = connection("https://a.klaviyo.com")
    assert proxied.session.proxies.get("https") == "http://proxy.example:3128"
    assert proxied.session.verify == str(bundle)
    assert proxied.session.trust_env is False  # no scan of the environment, no .netrc, per request
    monkeypatch.setenv("NO_PROXY", "a.klaviyo.com")
    direct = connection("https://a.klaviyo.com")
    assert "https" not in direct.session.proxies
