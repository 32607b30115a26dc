"""OAuth: tokens from the refresh token, refreshed before expiry and after a 401, rotation honoured."""

from __future__ import annotations

from pathlib import Path

from tests.emulator import Emulator
from tests.harness import run_cli, run_tap, select_only


def oauth_config(emu: Emulator, refresh_token: str) -> dict[str, str]:
    return {
        "client_id": "client-abc",
        "client_secret": "secret-client-value-123",
        "refresh_token": refresh_token,
        "api_url": emu.base_url,
    }


def test_oauth_sync_with_rotation_and_expiry(fresh_emulator: Emulator) -> None:
    # Tokens that expire within the refresh margin force a refresh before each use.
    fresh_emulator.add_oauth_client(
        "client-abc", "secret-client-value-123", refresh_token="refresh-one-xyz", expires_in=30, rotate=True
    )
    config = oauth_config(fresh_emulator, "refresh-one-xyz")
    result = run_tap(config, catalog=select_only(config, {"list", "template"}))
    assert {r["id"] for r in result.records["list"]} == fresh_emulator.account.expected_ids("list")
    token_calls = [e for e in fresh_emulator.requests if e.path == "/oauth/token"]
    assert len(token_calls) >= 2, "expected refreshes with the rotated token"
    assert all(e.status == 200 for e in token_calls)
    api_calls = [e for e in fresh_emulator.requests if e.path.startswith("/api/")]
    assert all(e.headers["Authorization"].startswith("Bearer") for e in api_calls)
    for secret in ("secret-client-value-123", "refresh-one-xyz"):
        assert secret not in result.stdout + result.stderr


def test_bad_oauth_client_fails_in_one_line(fresh_emulator: Emulator, tmp_path: Path) -> None:
    fresh_emulator.add_oauth_client("client-abc", "secret-client-value-123", refresh_token="refresh-one-xyz")
    config = oauth_config(fresh_emulator, "refresh-not-valid-987")
    proc = run_cli([], config, tmp_path)
    assert proc.returncode != 0
    assert "OAuth token refresh failed" in proc.stderr and "Traceback" not in proc.stderr
    for secret in ("secret-client-value-123", "refresh-not-valid-987"):
        assert secret not in proc.stderr + proc.stdout
