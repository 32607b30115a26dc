"""How long the warehouse models (dbt_klaviyo/) take to build on a loaded demo account.

The account is loaded as the README's first command loads it (`scripts/sync.py --demo --no-models`, through
Meltano into DuckDB), then Meltano's dbt-duckdb utility builds the models three times: a full build
(`--full-refresh`), an incremental build with nothing new, and `dbt run` alone (the models without their
tests). Wall seconds of each `meltano invoke`, which include dbt's start (a few seconds).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import sync as sync_script  # noqa: E402


@dataclass
class ModelTimes:
    load: float
    full_build: float
    incremental_build: float
    run_only: float
    events: int
    passed: str  # dbt's "PASS=.. WARN=.. ERROR=.." of the full build


def _invoke(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.monotonic()
    proc = subprocess.run(
        [str(sync_script.meltano_bin()), "--environment=demo", "invoke", "dbt-duckdb", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    if proc.returncode:
        raise RuntimeError(f"dbt {' '.join(args)} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return elapsed, proc.stdout


def time_models(size: str, workdir: Path) -> ModelTimes:
    out = workdir / f"models-{size}"
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "scripts/sync.py", "--demo", "--fresh", "--no-models", "--size", size, "--output", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    load = time.monotonic() - started
    database = out / "demo.duckdb"
    env = {
        **os.environ,
        "DBT_DUCKDB_PATH": str(database),
        "DBT_TARGET_PATH": str(out / "dbt" / "target"),
        "DBT_LOG_PATH": str(out / "dbt" / "logs"),
        "DBT_USE_COLORS": "false",
    }
    subprocess.run(
        [str(sync_script.meltano_bin()), "install", "dbt-duckdb"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    full, text = _invoke(["build", "--full-refresh"], env)
    incremental, _ = _invoke(["build"], env)
    run_only, _ = _invoke(["run"], env)
    passed = next((line.split("Done. ", 1)[1].strip() for line in text.splitlines() if "Done. PASS" in line), "?")
    rows = sync_script.query(database, "select count(*) from klaviyo_models.klaviyo__events")
    return ModelTimes(load, full, incremental, run_only, int(str(rows[0][0])), passed)
