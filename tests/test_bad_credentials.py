"""A bad credential is one line everywhere: the installed commands, run as a user runs them, against the emulator.

Sync, `--test` (the check setup wizards and hosted platforms run first), a sync with `--catalog`, and
target-klaviyo, each with a wrong API key and with OAuth settings the emulator refuses: a non-zero exit, no
traceback, one ERROR line that names the problem and what to do, and the secret nowhere in the output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from klaviyo_emulator import Emulator
from tap_klaviyo.tap import TapKlaviyo
from tests.harness import lines_besides_info, run_cli

WRONG_KEY = {"api_key": "pk_this_is_a_secret_wrong_key_123456"}
WRONG_OAUTH = {
    "client_id": "cid-unknown",
    "client_secret": "cs_secret_wrong_4567",
    "refresh_token": "rt_secret_wrong_89",
}
#: What each credential's one line must say: the problem, and what to check.
SAYS = {
    "api_key": ("authentication failed", "Check api_key"),
    "oauth": ("OAuth token refresh failed", "check client_id"),
}
ONE_PROFILE = (
    '{"type": "SCHEMA", "stream": "profile", "schema": {"properties": {"email": {"type": "string"}}}, '
    '"key_properties": []}\n{"type": "RECORD", "stream": "profile", "record": {"email": "a@example.com"}}\n'
)
COMMANDS = {
    "sync": ("tap-klaviyo", []),
    "test": ("tap-klaviyo", ["--test"]),
    "catalog": ("tap-klaviyo", ["--catalog", "catalog.json"]),
    "target": ("target-klaviyo", []),
}


def run(name: str, credentials: dict[str, str], emulator: Emulator, tmp_path: Path, level: str | None) -> Any:
    command, args = COMMANDS[name]
    catalog = TapKlaviyo(config={}, validate_config=False).catalog_dict
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    args = [str(tmp_path / a) if a == "catalog.json" else a for a in args]
    config = {**credentials, "api_url": emulator.base_url}
    env = {"LOGLEVEL": level} if level else {}
    proc = run_cli(args, config, tmp_path, command=command, env=env, stdin=ONE_PROFILE, timeout=120)
    for secret in credentials.values():
        assert secret not in proc.stdout + proc.stderr
    assert proc.returncode != 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert '"type":"RECORD"' not in proc.stdout.replace(" ", "")
    return proc


@pytest.mark.parametrize("credential", ["api_key", "oauth"])
@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_refused_credential_is_one_line(emulator: Emulator, tmp_path: Path, name: str, credential: str) -> None:
    credentials = WRONG_KEY if credential == "api_key" else WRONG_OAUTH
    # At the default level: the run's INFO chatter, and one line besides it, the ERROR.
    chatty = run(name, credentials, emulator, tmp_path, None)
    besides_info = lines_besides_info(chatty.stderr)
    # ... and that chatter is short: no start-up wiring, no summary of a run that read nothing.
    assert "as child stream to" not in chatty.stderr and "summary:" not in chatty.stderr, chatty.stderr[-3000:]
    # As a platform's check runs it (the SDK's LOGLEVEL): stderr is that line alone.
    quiet = run(name, credentials, emulator, tmp_path, "warning")
    lines = [line for line in quiet.stderr.splitlines() if line.strip()]
    for one in (besides_info, lines):
        assert len(one) == 1, one
        assert "| ERROR" in one[0]  # which stream's request is refused first is a race: each says the same
        for needle in SAYS[credential]:
            assert needle in one[0]


def test_schema_test_needs_no_credential_check_and_prints_every_schema(emulator: Emulator, tmp_path: Path) -> None:
    """`--test=schema` sends no request: a wrong key still gets every stream's SCHEMA on stdout."""
    emulator.clear_log()
    proc = run_cli(["--test=schema"], {**WRONG_KEY, "api_url": emulator.base_url}, tmp_path, command="tap-klaviyo")
    assert proc.returncode == 0, proc.stderr[-2000:]
    schemas = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {m["type"] for m in schemas} == {"SCHEMA"}
    assert {m["stream"] for m in schemas} == {
        s["tap_stream_id"] for s in TapKlaviyo(config={}, validate_config=False).catalog_dict["streams"]
    }
    assert not emulator.requests
    assert WRONG_KEY["api_key"] not in proc.stdout + proc.stderr


def test_bad_settings_under_test_are_one_line_before_any_request(emulator: Emulator, tmp_path: Path) -> None:
    """`--test` checks the settings as a sync does (the SDK calls it before `invoke`, outside its handler)."""
    emulator.clear_log()
    config = {**WRONG_KEY, "api_url": emulator.base_url, "start_date": "yesterday"}
    proc = run_cli(["--test"], config, tmp_path, command="tap-klaviyo", env={"LOGLEVEL": "warning"})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [proc.stderr.strip()]
    assert "start_date 'yesterday'" in proc.stderr
    assert not emulator.requests
