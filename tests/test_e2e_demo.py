"""`scripts/demo.py`: the tap's own command line against the demo account, the second run incremental."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from klaviyo_emulator.data import SIZES
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


def series_days(out: Path, skip: int = 0) -> dict[str, set[str]]:
    """The days of each daily-series report in the messages file (after its first `skip` lines)."""
    days: dict[str, set[str]] = {}
    with out.open(encoding="utf-8") as lines:
        for line in list(lines)[skip:]:
            message = json.loads(line)
            if message["type"] == "RECORD" and message["stream"].endswith("_series_report"):
                days.setdefault(message["stream"], set()).add(message["record"]["date"])
    return days


def per_day(counts: dict[str, tuple[int, int]], days: dict[str, set[str]]) -> dict[str, tuple[float, float]]:
    """Counts with a series report's divided by its days: the demo reads reports of yesterday and today
    (UTC), so a run just after midnight has one day fewer of them and the rest must still be equal."""
    return {s: (r / len(days[s]), n / len(days[s])) if s in days else (r, n) for s, (r, n) in counts.items()}


def test_demo_script_twice_the_second_incremental_then_fresh(tmp_path: Path) -> None:
    out = tmp_path / "demo-tap.jsonl"
    text, first = demo(out)
    assert "all history" in text
    assert first["profile"] == (SIZES["tiny"].profiles, SIZES["tiny"].profiles)
    assert all(records == new for records, new in first.values())
    state = json.loads(out.with_suffix(".state.json").read_text())
    assert state["bookmarks"]["event"]
    first_days = series_days(out)
    assert first_days and all(1 <= len(d) <= 2 for d in first_days.values()), first_days
    lines = len(out.read_text(encoding="utf-8").splitlines())

    text, second = demo(out)
    assert "25 new events since the last run; incremental" in text
    # Only a UTC day begun since the first run brings series-report rows of keys not seen before.
    second_days = series_days(out, skip=lines)
    new_days = {s: days - first_days.get(s, set()) for s, days in second_days.items()}
    grown = {s: second[s][1] for s, days in new_days.items() if days}
    assert all(n > 0 and n % len(new_days[s]) == 0 for s, n in grown.items()), (grown, new_days)
    assert {s: n for s, (_, n) in second.items() if n and s not in grown} == {
        "event": 25,
        "profile": 1,
        "profile_list": 1,
    }
    assert second["event"][0] < first["event"][0] / 10, "events read from the bookmark, not all history"

    text, fresh = demo(out, "--fresh")
    assert "all history" in text
    assert per_day(fresh, series_days(out)) == per_day(first, first_days)
