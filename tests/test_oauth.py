"""OAuth: tokens from the refresh token, refreshed before expiry and after a 401, rotation honoured."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from klaviyo_core.token_store import RefreshTokenStore, source_file, write_refresh_token
from klaviyo_emulator import Emulator
from tests.harness import ROOT, run_cli, run_tap, select_only


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


def rotating_client(emu: Emulator) -> None:
    """Klaviyo's rotation as the emulator models it: each refresh returns a new refresh token, and the
    one used stays good for one more refresh (the grace use), then it is spent."""
    emu.add_oauth_client(
        "client-abc", "secret-client-value-123", refresh_token="refresh-one-xyz", rotate=True, grace_uses=1
    )


def catalog_args(config: dict[str, Any], tmp_path: Path) -> list[str]:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(select_only(dict(config), {"list"})))  # it fills in defaults
    return ["--catalog", str(catalog)]


def test_rotated_refresh_token_is_written_back_and_five_runs_succeed(fresh_emulator: Emulator, tmp_path: Path) -> None:
    rotating_client(fresh_emulator)
    config = {"start_date": "2020-01-01T00:00:00Z", **oauth_config(fresh_emulator, "refresh-one-xyz"), "zz": 1}
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config, indent=4) + "\n")
    config_file.chmod(0o600)
    args = catalog_args(config, tmp_path)
    tokens = ["refresh-one-xyz"]
    for run in range(5):
        proc = subprocess.run(
            [sys.executable, "-m", "tap_klaviyo", "--config", str(config_file), *args],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("TAP_KLAVIYO_")},
            check=False,
        )
        assert proc.returncode == 0, f"run {run + 1}: {proc.stderr[-3000:]}"
        assert f"saved the new one to {config_file}" in proc.stderr
        saved = json.loads(config_file.read_text())
        assert saved["refresh_token"] not in tokens, "a new token each run"
        tokens.append(saved["refresh_token"])
        for token in tokens:
            assert token not in proc.stderr + proc.stdout
        # Nothing else changed: the other keys, their order and values, the layout, the mode.
        assert list(saved) == list(config) and {**saved, "refresh_token": "x"} == {**config, "refresh_token": "x"}
        assert config_file.read_text() == json.dumps({**config, "refresh_token": tokens[-1]}, indent=4) + "\n"
        assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "no temporary file left"


def test_rotation_without_a_config_file_warns_what_to_update(fresh_emulator: Emulator, tmp_path: Path) -> None:
    rotating_client(fresh_emulator)
    config = oauth_config(fresh_emulator, "refresh-one-xyz")
    env = {f"TAP_KLAVIYO_{name.upper()}": value for name, value in config.items()}
    proc = run_cli(["--config", "ENV", *catalog_args(config, tmp_path)], None, tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    warnings = [line for line in proc.stderr.splitlines() if "rotated the OAuth refresh token" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0].upper(), proc.stderr[-3000:]
    assert "update refresh_token where it is configured" in warnings[0]
    assert "refresh-one-xyz" not in proc.stderr and "krt_" not in proc.stderr


def test_meltano_temporary_config_is_not_rewritten(tmp_path: Path) -> None:
    config_file = tmp_path / "tap.0b7e4d1c-2f6a-4e8b-9c3d-5a1f2e3d4c5b.config.json"
    config_file.write_text(json.dumps({"refresh_token": "old"}))
    logger = logging.getLogger("test-token-store")
    store = RefreshTokenStore("old", [config_file], logger, environ={"MELTANO_EXTRACTOR_NAME": "tap-klaviyo"})
    with_records = _capture(logger)
    store("new")
    store("newer")
    assert json.loads(config_file.read_text()) == {"refresh_token": "old"}
    assert len(with_records) == 1 and "meltano config set tap-klaviyo refresh_token" in with_records[0]


def test_write_back_keeps_the_file_byte_for_byte_but_the_token(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    text = '{\n  "client_id": "c",\n  "refresh_token" :  "old\\u00e9",\n  "nested": {"a": [1, 2]}\n}'
    path.write_text(text)
    path.chmod(0o640)
    write_refresh_token(path, 'new"token')
    assert path.read_text() == text.replace('"old\\u00e9"', '"new\\"token"')
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    # A layout the exact edit cannot handle (the key twice: nested too) is rewritten with keys in order.
    path.write_text('{"a": 1, "refresh_token": "x", "b": {"refresh_token": "y"}}')
    write_refresh_token(path, "z")
    assert path.read_text() == '{"a": 1, "refresh_token": "z", "b": {"refresh_token": "y"}}'
    # Another file set the token, or the environment overrode it: no file is the source.
    other = tmp_path / "other.json"
    other.write_text('{"refresh_token": "from-env-not-this"}')
    assert source_file("z", [path, other]) is None
    assert source_file("z", [other, path]) == path


def _capture(logger: logging.Logger) -> list[str]:
    lines: list[str] = []

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger.addHandler(Handler())
    return lines
