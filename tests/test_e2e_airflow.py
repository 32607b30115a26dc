"""Every account's sync on Airflow 3 (orchestrate/airflow/klaviyo_accounts.py), run by Airflow itself.

Airflow is installed in a virtual environment of its own (`.meltano/airflow-venv`, reused across runs like
Meltano's), apart from the tap's and Meltano's. The Meltano project is this repository's meltano.yml with
three accounts (inherited extractors), each served by its own emulator; the third account's connection
holds a key its emulator does not know (401). Airflow loads the DAG (no import errors) and runs it once with
`dag.test()`: the two good accounts load into DuckDB files of their own with their state under their own
ids, the third fails its own task only (tried twice), and the models build once, after every load, for the
accounts that loaded. Parsing under a remote executor with Meltano's local state is refused.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from klaviyo_emulator import Emulator, EmulatorConfig
from tests.harness import ROOT
from tests.meltano_e2e import (
    Meltano,
    account_extractor,
    accounts_project,
    clean_env,
    duckdb_query,
    meltano_for_tests,
    sync_script,
    tool_or_skip,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

AIRFLOW_VERSION = "3.3.2"
AIRFLOW_VENV = ROOT / ".meltano" / "airflow-venv"
DAGS = ROOT / "orchestrate" / "airflow"
DAG_ID = "klaviyo_accounts"
LOADER = "target-duckdb"
# Account -> (the key its emulator knows, the key its Airflow connection holds, the emulator's seed).
ACCOUNTS = {
    "shop-a": ("pk_shop_a_0123456789abcdef01234567", "pk_shop_a_0123456789abcdef01234567", 31),
    "shop-b": ("pk_shop_b_fedcba9876543210fedcba98", "pk_shop_b_fedcba9876543210fedcba98", 32),
    "shop-c": ("pk_shop_c_00112233445566778899aabb", "pk_shop_c_revoked_000000000000000000", 33),
}
GOOD = ("shop-a", "shop-b")
# What the models read (dbt_klaviyo/models/staging/sources.yml), and quick reports.
STREAMS = (
    "event",
    "event_attribution",
    "metric",
    "profile",
    "list",
    "profile_list",
    "campaign",
    "campaign_messages",
    "flow",
    "flow_messages",
    "campaign_values_report",
    "flow_values_report",
)
QUICK = {"report_history_days": 1, "report_lookback_days": 0, "report_requests_per_run": 1}

# Runs in Airflow's virtual environment: the DAG through DagBag, then one `dag.test()` unless asked to parse.
RUNNER = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
out = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}, "dag_ids": sorted(bag.dag_ids)}
for dag in bag.dags.values():
    out["shape"] = {
        t.task_id: [sorted(t.upstream_task_ids), t.trigger_rule.value, t.max_active_tis_per_dag, t.retries]
        for t in dag.tasks
    }
if sys.argv[2] == "run" and sys.argv[3] in bag.dags:
    dag = bag.dags[sys.argv[3]]
    run = dag.test()
    out["state"] = str(run.state)
    out["tasks"] = {
        ti.task_id: {
            "state": str(ti.state),
            "try_number": ti.try_number,
            "start": ti.start_date.timestamp() if ti.start_date else None,
            "end": ti.end_date.timestamp() if ti.end_date else None,
        }
        for ti in run.get_task_instances()
    }
print("RESULT " + json.dumps(out))
"""


def airflow_python() -> Path:
    exe = tool_or_skip(
        lambda: sync_script.ensure_tool(AIRFLOW_VENV, "apache-airflow", AIRFLOW_VERSION, "airflow"), "Airflow"
    )
    return exe.parent / "python"


def airflow(python: Path, env: Mapping[str, str], mode: str) -> tuple[dict[str, Any], str]:
    """What RUNNER found, and Airflow's log (the tasks' logs with it under `dag.test()`)."""
    proc = subprocess.run(
        [str(python), "-c", RUNNER, str(DAGS), mode, DAG_ID],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (proc.stdout + proc.stderr)[-8000:]
    return dict(json.loads(lines[-1].removeprefix("RESULT "))), proc.stdout


def connection(emu: Emulator, key: str) -> str:
    """The account's Airflow connection (AIRFLOW_CONN_...): its key, its API URL, quick reports in extra."""
    return json.dumps({"conn_type": "http", "host": emu.base_url, "password": key, "extra": QUICK})


def airflow_env(meltano: Meltano, home: Path, warehouse: Path, emus: Mapping[str, Emulator]) -> dict[str, str]:
    env = meltano.env(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "KLAVIYO_DAG_PROJECT": str(meltano.project),
            "KLAVIYO_DAG_MELTANO": str(meltano.exe),
            "KLAVIYO_DAG_DUCKDB_DIR": str(warehouse),
            "KLAVIYO_DAG_RETRIES": "1",
            "KLAVIYO_DAG_RETRY_DELAY_MINUTES": "0",
        }
    )
    for name, emu in emus.items():
        conn_id = f"KLAVIYO_{name.upper().replace('-', '_')}"
        env[f"AIRFLOW_CONN_{conn_id}"] = connection(emu, ACCOUNTS[name][1])
    return env


def test_dag_syncs_each_account_apart_then_builds_the_models_once(tmp_path: Path) -> None:
    python = airflow_python()
    project = accounts_project(tmp_path / "project", ACCOUNTS, STREAMS)
    (tmp_path / "home").mkdir()
    extractors = [account_extractor(name) for name in ACCOUNTS]
    meltano = meltano_for_tests(tmp_path / "home", [*extractors, LOADER, "dbt-duckdb"], project)
    warehouse = tmp_path / "warehouse"

    # A remote executor with Meltano's state on local disk: the DAG refuses to load, in one clear line;
    # with a shared state backend it loads.
    remote = {**clean_env(), "AIRFLOW_HOME": str(tmp_path / "airflow-parse"), "KLAVIYO_DAG_PROJECT": str(project)}
    remote["AIRFLOW__CORE__EXECUTOR"] = "CeleryExecutor"
    refused, _ = airflow(python, remote, "parse")
    assert refused["dag_ids"] == [], refused
    [error] = refused["import_errors"].values()
    assert "executor CeleryExecutor runs tasks on other machines: set MELTANO_STATE_BACKEND_URI" in error
    # Two accounts loading into one schema would overwrite each other's tables: refused too (the second
    # account in a file of the project's include_paths).
    shared = tmp_path / "shared-schema"
    (shared / "accounts").mkdir(parents=True)
    extractor = "plugins:\n  extractors:\n  - name: {}\n    inherit_from: tap-klaviyo\n"
    (shared / "meltano.yml").write_text(
        'include_paths: ["./accounts/*.meltano.yml"]\n'
        + extractor.format("a")
        + "  - name: tap-klaviyo\n    load_schema: klaviyo\n"
    )
    (shared / "accounts" / "b.meltano.yml").write_text(extractor.format("b"))
    local = {**remote, "AIRFLOW__CORE__EXECUTOR": "LocalExecutor", "KLAVIYO_DAG_PROJECT": str(shared)}
    refused, _ = airflow(python, local, "parse")
    [error] = refused["import_errors"].values()
    assert "Accounts share the load_schema klaviyo: give each inherited extractor its own load_schema" in error
    parsed, _ = airflow(python, {**remote, "MELTANO_STATE_BACKEND_URI": "s3://bucket/state"}, "parse")
    assert (parsed["import_errors"], parsed["dag_ids"]) == ({}, [DAG_ID]), parsed
    # One group per account whose load runs once at a time and is retried; the models after every load
    # attempt, once; a leaf that fails the run when a load failed.
    loads = [f"{e}.load" for e in extractors]
    assert parsed["shape"] == {
        **{load: [[], "all_success", 1, 2] for load in loads},
        "models": [loads, "all_done", 1, 0],
        "every_account_loaded": [loads, "all_success", None, 2],
    }

    with ExitStack() as stack:
        emus = {
            name: stack.enter_context(Emulator(EmulatorConfig(size="tiny", seed=seed, rate_limit_scale=0.0)))
            for name, (_key, _conn_key, seed) in ACCOUNTS.items()
        }
        for name, emu in emus.items():
            emu.add_api_key(ACCOUNTS[name][0])
        started = time.monotonic()
        env = airflow_env(meltano, tmp_path / "airflow", warehouse, emus)
        subprocess.run([str(python.parent / "airflow"), "db", "migrate"], env=env, capture_output=True, check=True)
        result, log = airflow(python, env, "run")
        elapsed = time.monotonic() - started
        print(f"dag.test() of {len(ACCOUNTS)} accounts: {elapsed:.1f} s")

        assert result["import_errors"] == {}, result["import_errors"]
        tasks = result["tasks"]
        runs = {name: tasks[f"{account_extractor(name)}.load"] for name in ACCOUNTS}
        assert set(tasks) == {*(f"{e}.load" for e in extractors), "models", "every_account_loaded"}
        # The bad key fails its own account only (after its retry); the others and the models complete, and
        # the run says it failed.
        assert {name: t["state"] for name, t in runs.items()} == {
            "shop-a": "success",
            "shop-b": "success",
            "shop-c": "failed",
        }
        assert runs["shop-c"]["try_number"] == 2, runs["shop-c"]
        failure = f"meltano run {account_extractor('shop-c')} {LOADER} exited 1:\n"
        assert log.count(failure) == 2 and "authentication failed: Klaviyo answered 401" in log.split(failure)[1]
        unauthorized = [e for e in emus["shop-c"].requests.snapshot() if e.status == 401]
        assert len(unauthorized) >= 2 and all(e.status == 401 for e in emus["shop-c"].requests.snapshot())
        assert tasks["models"]["state"] == "success"
        assert tasks["every_account_loaded"]["state"] == "upstream_failed"
        assert result["state"] == "failed"
        # The models ran once, after every load attempt ended.
        assert tasks["models"]["try_number"] == 1
        assert tasks["models"]["start"] >= max(t["end"] for t in runs.values())

        for name in GOOD:
            database = warehouse / f"{account_extractor(name)}.duckdb"
            schema = name.replace("-", "_")
            account = emus[name].account
            # Every profile and list of the account, in its own file and schema.
            for stream in ("profile", "list"):
                found = {row[0] for row in duckdb_query(database, f"select id from {schema}.{stream}")}
                assert found == account.expected_ids(stream), (name, stream)
            events = duckdb_query(database, f"select count(*) from {schema}.event")
            assert events[0][0] > 0, name
            # The models, built from this account's tables into its own schema.
            modelled = duckdb_query(database, f"select count(*) from {schema}_models.klaviyo__events")
            assert modelled == events, name
            state = meltano.state(f"dev:{account_extractor(name)}-to-{LOADER}")
            assert state["singer_state"]["bookmarks"], (name, state)
        # Each state under its own id; none for the account that never loaded.
        ids = set(meltano("state", "list").split())
        assert ids == {f"dev:{account_extractor(name)}-to-{LOADER}" for name in GOOD}, ids
