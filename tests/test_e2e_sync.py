"""The README's first command: `scripts/sync.py` syncs the demo account into DuckDB through Meltano."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.emulator.data import SIZES
from tests.harness import ROOT
from tests.meltano_e2e import meltano_for_tests, sync_script

pytestmark = pytest.mark.timeout(900)


def test_sync_script_runs_the_demo_and_prints_row_counts(tmp_path: Path) -> None:
    meltano = meltano_for_tests(tmp_path, ["tap-klaviyo", "target-duckdb"])  # installed once, or a clear skip
    env = meltano.env()  # no credentials: the demo; the test session's plugins and a state of its own
    proc = subprocess.run(
        [sys.executable, "scripts/sync.py", "--size", "tiny", "--output", str(tmp_path / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^(\S+)\s+(\d+)$", proc.stdout, re.MULTILINE)}
    assert counts.pop("total") == sum(counts.values())
    assert counts["profile"] == SIZES["tiny"].profiles
    assert counts["list"] == SIZES["tiny"].lists
    assert counts["event"] > 0
    assert (tmp_path / "out" / "demo.duckdb").exists()
    assert "Meltano's log" in proc.stdout


def test_credentials_decide_between_demo_and_real_account(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    assert not sync_script.has_credentials({}, dotenv)
    assert sync_script.has_credentials({"TAP_KLAVIYO_API_KEY": "pk_x"}, dotenv)
    assert sync_script.has_credentials({"TAP_KLAVIYO_REFRESH_TOKEN": "r"}, dotenv)
    dotenv.write_text("TAP_KLAVIYO_API_KEY=''\n")
    assert not sync_script.has_credentials({}, dotenv)
    dotenv.write_text("OTHER=1\nTAP_KLAVIYO_API_KEY='pk_live'\n")
    assert sync_script.has_credentials({}, dotenv)
