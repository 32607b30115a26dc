"""`scripts/demo.py`: the tap's own command line against the demo account, the second run incremental."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.emulator.data import SIZES
from tests.harness import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def demo(out: Path, *args: str) -> tuple[str, dict[str, tuple[int, int]]]:
    """One run: its output, and per stream (records emitted, new keys)."""
    proc = subprocess.run(
        [sys.executable, "scripts/demo.py", "--size", "tiny", "--out", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    counts = {m[1]: (int(m[2]), int(m[3])) for m in re.finditer(r"^(\w+)\s+(\d+)\s+(\d+)$", proc.stdout, re.M)}
    total = counts.pop("total")
    assert total == (sum(r for r, _ in counts.values()), sum(n for _, n in counts.values()))
    return proc.stdout, counts


def test_demo_script_twice_the_second_incremental_then_fresh(tmp_path: Path) -> None:
    out = tmp_path / "demo-tap.jsonl"
    text, first = demo(out)
    assert "all history" in text
    assert first["profile"] == (SIZES["tiny"].profiles, SIZES["tiny"].profiles)
    assert all(records == new for records, new in first.values())
    state = json.loads(out.with_suffix(".state.json").read_text())
    assert state["bookmarks"]["event"]

    text, second = demo(out)
    assert "25 new events since the last run; incremental" in text
    assert {s: n for s, (_, n) in second.items() if n} == {"event": 25, "profile": 1, "profile_list": 1}
    assert second["event"][0] < first["event"][0] / 10, "events read from the bookmark, not all history"

    text, fresh = demo(out, "--fresh")
    assert "all history" in text and fresh == first
