"""Many accounts at once, the Meltano way (docs/meltano-and-orchestration.md, "Orchestration and many accounts"): one
extractor per account inheriting from `tap-klaviyo`, each with its own credentials (`TAP_KLAVIYO__<NAME>_...`) and
its own state, their `meltano run`s started at the same time against two emulated accounts (different seeds, keys).

The project is this repository's meltano.yml with two inherited extractors appended, in a temporary
directory (the user's meltano.yml is never edited); the tap is this clone, installed by path.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from klaviyo_emulator import Emulator, EmulatorConfig
from tests.meltano_e2e import Meltano, account_env_var, accounts_project, meltano_for_tests

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ACCOUNTS = {
    "account-a": ("pk_account_a_0123456789abcdef0123", 11),
    "account-b": ("pk_account_b_fedcba9876543210fedc", 12),
}
STREAMS = ("event", "profile", "list")


def start(meltano: Meltano, name: str, emu: Emulator, out: Path) -> subprocess.Popen[str]:
    """`meltano run tap-klaviyo--<name> target-jsonl`, not waited for."""
    key, _seed = ACCOUNTS[name]
    out.mkdir(parents=True)
    env = meltano.env(
        {
            account_env_var(name, "api_url"): emu.base_url,
            account_env_var(name, "api_key"): key,
            "TARGET_JSONL_DESTINATION_PATH": str(out),
        }
    )
    return subprocess.Popen(
        [str(meltano.exe), "run", f"tap-klaviyo--{name}", "target-jsonl"],
        cwd=meltano.project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> str:
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output[-5000:]
    return output


def ids(out: Path, stream: str) -> set[str]:
    path = out / f"{stream}.jsonl"
    assert path.exists(), f"no {path.name} in {sorted(p.name for p in out.iterdir())}"
    return {json.loads(line)["id"] for line in path.read_text().splitlines() if line}


def event_requests(emu: Emulator) -> int:
    return sum(1 for entry in emu.requests if entry.path == "/api/events")


def test_two_accounts_sync_at_the_same_time_each_with_its_own_records_and_state(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    project = accounts_project(tmp_path / "project", ACCOUNTS, STREAMS)
    meltano = meltano_for_tests(tmp_path / "home", [*(f"tap-klaviyo--{n}" for n in ACCOUNTS), "target-jsonl"], project)
    emus = {
        n: Emulator(EmulatorConfig(size="tiny", seed=seed, rate_limit_scale=0.0)) for n, (_, seed) in ACCOUNTS.items()
    }
    with emus["account-a"] as emu_a, emus["account-b"] as emu_b:
        for name, emu in emus.items():
            emu.add_api_key(ACCOUNTS[name][0])  # each emulated account knows its own key
        runs = {name: start(meltano, name, emus[name], tmp_path / "out" / name / "1") for name in ACCOUNTS}
        for proc in runs.values():
            finish(proc)
        # Each account's records are its own: every profile and list it holds, events only of its own.
        first = {name: {s: ids(tmp_path / "out" / name / "1", s) for s in STREAMS} for name in ACCOUNTS}
        for name, emu in emus.items():
            for stream, rtype in (("profile", "profile"), ("list", "list")):
                assert first[name][stream] == emu.account.expected_ids(rtype), (name, stream)
            assert first[name]["event"] and first[name]["event"] <= emu.account.expected_ids("event"), name
        for stream in STREAMS:
            assert not first["account-a"][stream] & first["account-b"][stream], stream
        assert emu_a.requests.snapshot() and emu_b.requests.snapshot()

        # Their states stay apart: one state id per extractor, and a second run of account A alone reads from
        # its own bookmarks (only the new events) and leaves account B's state as it was.
        states = {name: meltano.state(f"dev:tap-klaviyo--{name}-to-target-jsonl") for name in ACCOUNTS}
        for state in states.values():
            assert state["singer_state"]["bookmarks"], state
        events_first = event_requests(emu_a)
        emu_a.clear_log()
        emu_b.clear_log()
        new = set(emu_a.account.append_events(3, when=emu_a.account.now))
        finish(start(meltano, "account-a", emu_a, tmp_path / "out" / "account-a" / "2"))
        second = ids(tmp_path / "out" / "account-a" / "2", "event")
        assert new <= second and not second & first["account-b"]["event"]
        assert event_requests(emu_a) < events_first, "the second run of account A starts from its own bookmark"
        assert not emu_b.requests.snapshot(), "account B is not touched by account A's run"
        assert meltano.state("dev:tap-klaviyo--account-b-to-target-jsonl") == states["account-b"]
