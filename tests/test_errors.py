"""Bad input and refused requests: one readable line, a non-zero exit, no secret anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from klaviyo_emulator import DEMO_API_KEY, Emulator
from tests.harness import lines_besides_info, run_cli

SECRET_KEY = "pk_this_is_a_secret_wrong_key_123456"


def assert_one_clear_line(proc: Any, *needles: str) -> None:
    """A non-zero exit, and besides the INFO records one ERROR line naming the problem, no traceback."""
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    (line,) = lines_besides_info(proc.stderr)
    assert "| ERROR" in line
    for needle in needles:
        assert needle in line, (needle, line)


def test_wrong_key_fails_in_one_line(emulator: Emulator, tmp_path: Path) -> None:
    proc = run_cli([], {"api_key": SECRET_KEY, "api_url": emulator.base_url}, tmp_path)
    assert_one_clear_line(proc, "authentication failed")
    assert SECRET_KEY not in proc.stderr + proc.stdout
    assert '"type":"RECORD"' not in proc.stdout.replace(" ", "")


def test_missing_scope_names_stream_and_scope(emulator: Emulator, tmp_path: Path) -> None:
    emulator.add_api_key("pk_only_accounts_key_000000000000", scopes=["accounts:read"])
    proc = run_cli([], {"api_key": "pk_only_accounts_key_000000000000", "api_url": emulator.base_url}, tmp_path)
    assert_one_clear_line(proc, "scope", ":read")
    assert "pk_only_accounts_key_000000000000" not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ({}, "no credentials"),
        (
            {"api_key": DEMO_API_KEY, "client_id": "x", "client_secret": "y", "refresh_token": "z"},
            "exactly one",
        ),
        ({"client_id": "x", "client_secret": "y"}, "refresh_token missing"),
        ({"api_key": DEMO_API_KEY, "revision": "2026/07/15"}, "revision"),
        ({"api_key": DEMO_API_KEY, "start_date": "yesterday"}, "start_date"),
        ({"api_key": DEMO_API_KEY, "start_date": "2025-01-01", "end_date": "2024-01-01"}, "end_date"),
        ({"api_key": DEMO_API_KEY, "api_url": "http://klaviyo.example.com"}, "plain http"),
        ({"api_key": DEMO_API_KEY, "request_timeout": -5}, "request_timeout"),
        ({"api_key": DEMO_API_KEY, "series_reports": ["flow_series_reprot"]}, "series_reports"),
        ({"api_key": DEMO_API_KEY, "max_concurrency": 0}, "max_concurrency"),
        ({"api_key": DEMO_API_KEY, "custom_streams": [{"name": "x", "path": "/api/nope"}]}, "custom_streams[0].path"),
    ],
)
def test_bad_settings_fail_before_any_request(
    emulator: Emulator, tmp_path: Path, config: dict[str, Any], needle: str
) -> None:
    config = {"api_url": emulator.base_url, **config}
    emulator.clear_log()
    proc = run_cli([], config, tmp_path)
    assert_one_clear_line(proc, needle)
    assert not emulator.requests, "a request was sent despite bad settings"
    for secret in ("y", "z"):
        assert f'"{secret}"' not in proc.stderr


def test_discover_and_about_never_touch_the_network(tmp_path: Path) -> None:
    # An api_url nothing listens on: any request would fail or hang.
    config = {"api_key": SECRET_KEY, "api_url": "http://127.0.0.1:9"}
    discover = run_cli(["--discover"], config, tmp_path)
    assert discover.returncode == 0, discover.stderr[-2000:]
    assert '"streams"' in discover.stdout
    about = run_cli(["--about", "--format=markdown"], config, tmp_path)
    assert about.returncode == 0
    assert "api_key" in about.stdout
    assert SECRET_KEY not in discover.stdout + discover.stderr + about.stdout + about.stderr


def test_unreachable_api_fails_readably(tmp_path: Path) -> None:
    # The tap's own retries, in a real process on a fake clock (about 30 s of backoff in real time).
    proc = run_cli([], {"api_key": SECRET_KEY, "api_url": "http://127.0.0.1:9"}, tmp_path, waits=tmp_path / "waits")
    assert_one_clear_line(proc, "failed", "connection")
    assert SECRET_KEY not in proc.stderr + proc.stdout
