"""Nothing lost: interrupted runs resume, faults and throttling are ridden out, removals are caught."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from klaviyo_emulator import DEMO_API_KEY, Emulator, EmulatorConfig
from klaviyo_emulator.server import ForcedResponse
from tests.conftest import config_for
from tests.fake_clock import FakeClock
from tests.harness import ROOT, missing_records, run_cli, run_tap, select_only

SMALL_REPORTS = {"report_history_days": 0}


def read_messages(path: Path) -> list[dict[str, Any]]:
    """Complete lines only: a killed process may leave half a line."""
    messages = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            messages.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return messages


def test_sigkill_at_random_points_loses_nothing(fresh_emulator: Emulator, tmp_path: Path) -> None:
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config_for(fresh_emulator, **SMALL_REPORTS)))
    rng = random.Random(7)
    records: dict[str, list[dict[str, Any]]] = defaultdict(list)
    state: dict[str, Any] | None = None
    kills = 0
    for attempt in range(12):
        out = tmp_path / f"run{attempt}.jsonl"
        cmd = [sys.executable, "-m", "tap_klaviyo", "--config", str(config_file)]
        if state is not None:
            state_file = tmp_path / f"state{attempt}.json"
            state_file.write_text(json.dumps(state))
            cmd += ["--state", str(state_file)]
        with out.open("w") as sink:
            proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.DEVNULL, cwd=ROOT)
            killed = False
            if kills < 4:
                # Killed by progress, not by time: once the run has written this many lines (whatever the
                # machine's speed), at a random point of the sync.
                kill_at = rng.randint(30, 250)
                while proc.poll() is None and _lines(out) < kill_at:
                    time.sleep(0.02)
                if proc.poll() is None:
                    proc.kill()
                    killed = True
                    kills += 1
            proc.wait(timeout=300)
        messages = read_messages(out)
        for message in messages:
            if message["type"] == "RECORD":
                records[message["stream"]].append(message["record"])
        states = [m["value"] for m in messages if m["type"] == "STATE"]
        if states:
            state = states[-1]
        if not killed:
            assert proc.returncode == 0
            break
    assert kills >= 3, "the sync finished before it could be interrupted"
    assert not missing_records(fresh_emulator.account, records)
    assert state is not None
    bookmarks = state["bookmarks"]
    assert bookmarks["event"]["replication_key_value"]
    assert not any("progress_markers" in json.dumps(v) for v in bookmarks.values()), "state left unfinished"


def _lines(path: Path) -> int:
    with path.open("rb") as written:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: written.read(1 << 16), b""))


def test_faults_and_429_bursts_lose_nothing(tmp_path: Path) -> None:
    emu_config = EmulatorConfig(
        size="tiny",
        rate_limit_scale=0.0,
        fault_rate=0.05,
        timeout_delay_s=3.0,
        retry_after_omit_rate=0.5,
        seed=11,
    )
    with Emulator(emu_config) as emu:
        # Every kind at least once, on top of the random 5 %.
        emu.force(
            path_prefix="/api/templates",
            responses=[
                ForcedResponse(status=500),
                ForcedResponse(kind="502_html"),
                ForcedResponse(status=503),
                ForcedResponse(status=504),
                ForcedResponse(kind="truncated"),
            ],
        )
        emu.force(path_prefix="/api/segments", responses=[ForcedResponse(kind="drop"), ForcedResponse(kind="timeout")])
        for prefix in ("/api/profiles", "/api/lists", "/api/flows", "/api/campaigns", "/api/events"):
            emu.force(
                path_prefix=prefix,
                responses=[
                    ForcedResponse(status=429, retry_after=1),
                    ForcedResponse(status=429, retry_after=None),
                    ForcedResponse(status=429, retry_after=2),
                ],
            )
        clock = FakeClock()  # backoff and Retry-After waits on the tap's clock: bounded, and free here
        result = run_tap(config_for(emu, request_timeout=2, **SMALL_REPORTS), clock=clock)
        faults = {str(e.fault) for e in emu.requests if e.fault}
        assert not missing_records(emu.account, result.records)
        assert len([e for e in emu.requests if e.fault and "429" not in str(e.fault)]) >= 10
        kinds = {f.removesuffix("-forced") for f in faults}
        assert {"500", "502_html", "503", "504", "truncated", "drop", "timeout"} <= kinds, faults
        assert len([e for e in emu.requests if e.status == 429]) >= 15
        assert 0 < clock.elapsed < 240, f"waiting was not bounded: {clock.elapsed:.0f} s"


def test_skipping_streams_without_scope(emulator: Emulator) -> None:
    key = "pk_scoped_key_for_profiles_and_lists"
    emulator.add_api_key(key, scopes=["profiles:read", "lists:read", "accounts:read"])
    config = {"api_key": key, "api_url": emulator.base_url, "skip_streams_without_scope": True, **SMALL_REPORTS}
    result = run_tap(config)
    assert {r["id"] for r in result.records["profile"]} == emulator.account.expected_ids("profile")
    assert result.records["profile_list"]
    assert not result.records["event"] and not result.records["flow"]
    warnings = [line for line in result.stderr.splitlines() if "skipping stream" in line]
    assert any("event" in w and "events:read" in w for w in warnings)
    assert len([w for w in warnings if "skipping stream flow:" in w]) == 1, "one warning per stream"
    assert key not in result.stderr + result.stdout


def test_membership_removals_show_on_the_periodic_full_refresh(fresh_emulator: Emulator) -> None:
    config = config_for(fresh_emulator, membership_full_refresh_days=7)
    catalog = select_only(config, {"profile_list"})
    first = run_tap(config, catalog=catalog)
    list_id = sorted(fresh_emulator.account.expected_ids("list"))[0]
    gone = sorted(fresh_emulator.account.list_members(list_id))[0]
    fresh_emulator.account.remove_list_member(list_id, gone)

    incremental = run_tap(config, state=first.state, catalog=catalog)
    assert len(incremental.records["profile_list"]) < len(first.records["profile_list"]) / 2

    state = json.loads(json.dumps(incremental.state))
    old = (datetime.now(timezone.utc) - timedelta(days=8)).isoformat()
    state["bookmarks"]["profile_list"]["full_refresh_at"] = old
    refreshed = run_tap(config, state=state, catalog=catalog)
    rows = {(r["list_id"], r["profile_id"]) for r in refreshed.records["profile_list"]}
    expected = {
        (g, p) for g in fresh_emulator.account.expected_ids("list") for p in fresh_emulator.account.list_members(g)
    }
    assert rows == expected
    assert (list_id, gone) not in rows
    assert refreshed.state["bookmarks"]["profile_list"]["full_refresh_at"] > old


def test_campaign_state_is_per_channel_and_archive_partition(full_sync: tuple[Any, list[Any]]) -> None:
    result, _ = full_sync
    partitions = result.state["bookmarks"]["campaign"]["partitions"]
    assert {(p["context"]["channel"], p["context"]["archived"]) for p in partitions} == {
        (c, a) for c in ("email", "sms", "mobile_push") for a in (False, True)
    }
    for partition in partitions:
        channel, archived = partition["context"]["channel"], partition["context"]["archived"]
        rows = [r for r in result.records["campaign"] if r["channel"] == channel and r["archived"] == archived]
        if rows:
            assert partition["replication_key_value"] == max(r["updated_at"] for r in rows)


class _Garbage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html><body>Service Unavailable, try later</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


def test_an_api_url_answering_garbage_fails_readably_within_two_minutes(tmp_path: Path) -> None:
    """How long a real process takes to give up is the subject: its waits on a fake clock (about 30 s of
    backoff in real time), plus the real time it ran."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config = {"api_key": DEMO_API_KEY, "api_url": f"http://127.0.0.1:{server.server_address[1]}"}
        started = time.monotonic()
        proc = run_cli([], config, tmp_path, timeout=180, waits=tmp_path / "waits")
        ran = time.monotonic() - started
    finally:
        server.shutdown()
    waited = json.loads((tmp_path / "waits").read_text(encoding="utf-8"))["elapsed"]
    assert waited > 10, "the process retried, with backoff"
    assert ran + waited < 120
    assert proc.returncode != 0
    assert "not valid JSON" in proc.stderr and "Traceback" not in proc.stderr
    assert DEMO_API_KEY not in proc.stderr + proc.stdout


def test_no_secret_in_any_output_even_at_debug(fresh_emulator: Emulator, tmp_path: Path) -> None:
    fresh_emulator.add_oauth_client("cid-debug", "client-secret-debug-777", refresh_token="refresh-debug-888")
    secrets = ["client-secret-debug-777", "refresh-debug-888"]
    oauth = {
        "client_id": "cid-debug",
        "client_secret": secrets[0],
        "refresh_token": secrets[1],
        "api_url": fresh_emulator.base_url,
        **SMALL_REPORTS,
    }
    fresh_emulator.force(path_prefix="/api/lists", responses=[ForcedResponse(status=503), ForcedResponse(status=401)])
    proc = run_cli([], oauth, tmp_path, env={"LOGLEVEL": "DEBUG"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout + proc.stderr
    assert "Bearer" not in text or "Bearer ***" in text
    # The access tokens the run was issued, and the refresh tokens rotation handed it, are secrets too.
    issued = list(fresh_emulator.auth.access_tokens) + list(fresh_emulator.auth.refresh_tokens)
    assert len(fresh_emulator.auth.access_tokens) >= 2
    for secret in secrets + issued:
        assert secret not in text
    tokens = [e for e in fresh_emulator.requests if e.path == "/oauth/token"]
    assert len(tokens) >= 2, "the 401 should have refreshed the token once"
    for token_call in tokens:
        assert token_call.status == 200
