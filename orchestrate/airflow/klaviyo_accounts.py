"""Every Klaviyo account's sync on Airflow 3, from the Meltano project's own meltano.yml.

One task group per account: an extractor of meltano.yml that inherits from `tap-klaviyo` (or `tap-klaviyo`
itself when there is none), whose `load` task runs `meltano run <account> <loader>`. Meltano keeps each
account's state under its own id, `<environment>:<account>-to-<loader>`. Accounts load in parallel on the
deployment's executor; each load is retried on its own and never blocks another. `models` then builds the
warehouse models (dbt_klaviyo/, through the Meltano dbt utility) once, after every load has finished, for the
accounts that loaded; `every_account_loaded` fails the run when one did not. docs/orchestration-airflow.md
is the guide.

Settings are environment variables of the DAG processor and the workers, read when the DAG is parsed (an
Airflow Variable read at parse time would cost a call at every parse):

- KLAVIYO_DAG_PROJECT: the Meltano project's directory (default: MELTANO_PROJECT_ROOT, else the project
  this file ships in).
- KLAVIYO_DAG_MELTANO: the `meltano` executable (default: `meltano` on PATH).
- KLAVIYO_DAG_ENVIRONMENT: the Meltano environment (default: the project's default_environment).
- KLAVIYO_DAG_LOADER, KLAVIYO_DAG_MODELS: the loader and the dbt utility (target-duckdb, dbt-duckdb); an
  empty KLAVIYO_DAG_MODELS builds no models.
- KLAVIYO_DAG_DUCKDB_DIR: with target-duckdb, where each account's own database file goes (default: the
  project's output/), as DuckDB lets one process write a file at a time.
- KLAVIYO_DAG_SCHEDULE (cron or preset, default @daily; `none`: triggered only), KLAVIYO_DAG_RETRIES
  (default 2), KLAVIYO_DAG_RETRY_DELAY_MINUTES (default 6).

Secrets never appear here: each account's come from the Airflow connection `klaviyo_<account>` (password:
the private API key; host: the API URL; extra: any other tap setting, such as the OAuth refresh_token), or,
without that connection, from the workers' environment (`TAP_KLAVIYO__<ACCOUNT>_API_KEY`, Meltano's own).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Connection, TaskGroup, TriggerRule, get_current_context, task
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowNotFoundException

BASE_EXTRACTOR = "tap-klaviyo"
# Executors whose tasks all run on this machine, so they share Meltano's local system database.
LOCAL_EXECUTORS = {"LocalExecutor", "SequentialExecutor", "DebugExecutor"}


def setting(name: str, default: str) -> str:
    return os.environ.get(f"KLAVIYO_DAG_{name}", default)


def env_name(plugin: str) -> str:
    """Meltano's prefix of a plugin's setting variables: `tap-klaviyo--shop-a` -> `TAP_KLAVIYO__SHOP_A`."""
    return re.sub(r"[^A-Z0-9]", "_", plugin.upper())


@dataclass(frozen=True)
class Account:
    """One Klaviyo account: its extractor in meltano.yml and the schema its tables load into."""

    extractor: str
    load_schema: str

    @property
    def conn_id(self) -> str:
        """`tap-klaviyo` -> klaviyo, `tap-klaviyo--shop-a` -> klaviyo_shop_a."""
        suffix = self.extractor.removeprefix(BASE_EXTRACTOR).strip("-_")
        return "klaviyo" + ("_" + re.sub(r"[^a-z0-9]+", "_", suffix.lower()) if suffix else "")


@dataclass(frozen=True)
class Project:
    """What the DAG needs from the Meltano project: where it is, its accounts, where its state lives."""

    root: Path
    meltano: dict[str, Any]

    @classmethod
    def load(cls, root: Path) -> Project:
        path = root / "meltano.yml"
        if not path.is_file():
            raise FileNotFoundError(f"No meltano.yml in {root}: set KLAVIYO_DAG_PROJECT to the Meltano project")
        meltano = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        extractors = list(meltano.get("plugins", {}).get("extractors") or [])
        for pattern in meltano.get("include_paths") or []:  # a project split over several files
            for part in sorted(root.glob(pattern)):
                included = yaml.safe_load(part.read_text(encoding="utf-8")) or {}
                extractors += (included.get("plugins") or {}).get("extractors") or []
        meltano["plugins"] = {**meltano.get("plugins", {}), "extractors": extractors}
        return cls(root, meltano)

    def accounts(self) -> list[Account]:
        """Extractors inheriting (at any depth) from tap-klaviyo; tap-klaviyo itself when none does."""
        by_name = {p["name"]: p for p in self.meltano["plugins"]["extractors"]}

        def lineage(name: str) -> list[dict[str, Any]]:
            chain: list[dict[str, Any]] = []
            while name in by_name and len(chain) <= len(by_name):
                chain.append(by_name[name])
                name = by_name[name].get("inherit_from", "")
            return chain

        found = []
        for name in by_name:
            chain = lineage(name)
            if name != BASE_EXTRACTOR and BASE_EXTRACTOR in {p["name"] for p in chain}:
                schema = next((p["load_schema"] for p in chain if p.get("load_schema")), "klaviyo")
                found.append(Account(name, str(schema)))
        if not found and BASE_EXTRACTOR in by_name:
            found = [Account(BASE_EXTRACTOR, str(by_name[BASE_EXTRACTOR].get("load_schema") or "klaviyo"))]
        if not found:
            raise ValueError(f"{self.root / 'meltano.yml'} has no {BASE_EXTRACTOR} extractor: nothing to sync")
        schemas = [a.load_schema for a in found]
        shared = sorted({s for s in schemas if schemas.count(s) > 1})
        if shared:
            raise ValueError(
                f"Accounts share the load_schema {', '.join(shared)}: give each inherited extractor its own "
                "load_schema in meltano.yml, so one account's tables never overwrite another's"
            )
        return found

    def local_state_backend(self) -> str | None:
        """Meltano's default state store when it is in force, a SQLite file on this machine's disk (None when
        a state backend or a database server is set: an explicit file:// is taken to be a shared mount)."""
        backend = os.environ.get("MELTANO_STATE_BACKEND_URI") or (self.meltano.get("state_backend") or {}).get("uri")
        if os.path.expandvars(str(backend or "")) not in {"", "systemdb"}:
            return None
        database = os.environ.get("MELTANO_DATABASE_URI") or self.meltano.get("database_uri") or ""
        database = os.path.expandvars(str(database)) or "sqlite (.meltano/meltano.db)"
        return f"the system database, {database}" if database.startswith("sqlite") else None


def refuse_local_state_on_remote_workers(project: Project, executor: str) -> None:
    """Workers that share no disk would each keep their own state: every run would start from scratch."""
    remote = [e for e in executor.split(",") if e.strip() and e.split(":")[-1].split(".")[-1] not in LOCAL_EXECUTORS]
    local = project.local_state_backend()
    if remote and local:
        raise RuntimeError(
            f"Meltano's state is kept in {local}, on one machine's disk, but the executor {executor.strip()} "
            "runs tasks on other machines: set MELTANO_STATE_BACKEND_URI (s3://, gs://, azure:// or a "
            "postgresql:// database) or a shared MELTANO_DATABASE_URI for the DAG processor and workers"
        )


def run_meltano(meltano: str, project: Path, args: list[str], env: dict[str, str]) -> None:
    """Meltano's output line by line into the task's log; its errors (else its last lines) in the exception."""
    tail: deque[str] = deque(maxlen=10)
    errors: list[str] = []
    try:
        proc = subprocess.Popen(
            [meltano, *args], cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    except FileNotFoundError:
        raise FileNotFoundError(f"No Meltano at {meltano}: install it or set KLAVIYO_DAG_MELTANO to its path") from None
    assert proc.stdout is not None
    for line in proc.stdout:
        print(line, end="", flush=True)
        tail.append(line.rstrip())
        if "[error" in line and len(errors) < 5:
            errors.append(line.rstrip())
    if proc.wait():
        raise RuntimeError(f"meltano {' '.join(args)} exited {proc.returncode}:\n" + "\n".join(errors or tail))


def worker_env() -> dict[str, str]:
    """The worker's environment less Airflow's own connections and variables (other accounts' secrets)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}


def connection_env(account: Account) -> dict[str, str]:
    """The account's secrets as Meltano setting variables, from its Airflow connection if there is one."""
    try:
        conn = Connection.get(account.conn_id)
    except AirflowNotFoundException:
        print(f"No Airflow connection {account.conn_id}: {account.extractor}'s settings come from the environment")
        return {}
    values: dict[str, Any] = dict(conn.extra_dejson or {})
    if conn.password:
        values["api_key"] = conn.password
    if conn.host:
        url = conn.host if "://" in conn.host else f"https://{conn.host}"
        values["api_url"] = f"{url}:{conn.port}" if conn.port else url
    prefix = env_name(account.extractor)
    return {f"{prefix}_{name.upper()}": v if isinstance(v, str) else json.dumps(v) for name, v in values.items()}


PROJECT = Project.load(Path(setting("PROJECT", os.environ.get("MELTANO_PROJECT_ROOT", str(Path(__file__).parents[2])))))
refuse_local_state_on_remote_workers(PROJECT, conf.get("core", "executor"))
MELTANO = setting("MELTANO", "meltano")
LOADER = setting("LOADER", "target-duckdb")
MODELS = setting("MODELS", "dbt-duckdb")
ENVIRONMENT = setting("ENVIRONMENT", "")
DUCKDB_DIR = Path(setting("DUCKDB_DIR", str(PROJECT.root / "output")))


def meltano_args(*args: str) -> list[str]:
    return [*(["--environment", ENVIRONMENT] if ENVIRONMENT else []), *args]


def warehouse_env(account: Account) -> dict[str, str]:
    """Where the account's tables and models go: with DuckDB, a file of its own (one writer per file)."""
    if LOADER != "target-duckdb":
        return {}
    database = str(DUCKDB_DIR / f"{account.extractor}.duckdb")
    return {"TARGET_DUCKDB_FILEPATH": database, f"{env_name(MODELS)}_PATH": database}


def account_group(account: Account) -> TaskGroup:
    """The account's task group: its `load` (`<account>.load`, whose result the models task reads)."""
    with TaskGroup(group_id=account.extractor) as group:
        # One try of an account at a time, across runs: Meltano refuses a state id that is in use.
        @task(task_id="load", max_active_tis_per_dag=1)
        def load() -> dict[str, str]:
            """`meltano run <account> <loader>`: its state id is its own, `<env>:<account>-to-<loader>`."""
            if LOADER == "target-duckdb":
                DUCKDB_DIR.mkdir(parents=True, exist_ok=True)
            env = {**worker_env(), **connection_env(account), **warehouse_env(account)}
            run_meltano(MELTANO, PROJECT.root, meltano_args("run", account.extractor, LOADER), env)
            return asdict(account)

        load()
    return group


with DAG(
    dag_id="klaviyo_accounts",
    description="Each Klaviyo account of meltano.yml through Meltano, then the warehouse models",
    schedule=None if setting("SCHEDULE", "@daily").lower() == "none" else setting("SCHEDULE", "@daily"),
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),  # before any run; no catch-up
    catchup=False,
    default_args={
        "retries": int(setting("RETRIES", "2")),
        # Longer than Meltano's 5 minutes without heartbeat after which a killed run's state id is free again.
        "retry_delay": timedelta(minutes=float(setting("RETRY_DELAY_MINUTES", "6"))),
    },
    tags=["klaviyo", "meltano"],
) as dag:
    ACCOUNTS = PROJECT.accounts()
    groups = [account_group(account) for account in ACCOUNTS]

    @task(task_id="models", trigger_rule=TriggerRule.ALL_DONE, retries=0, max_active_tis_per_dag=1)
    def models() -> list[str]:
        """The models of every account whose load succeeded in this run, each in its own schema
        (`<load_schema>_models`); an account whose load failed keeps its previous models."""
        if not MODELS:
            return []
        ti = get_current_context()["ti"]
        loaded = [Account(**found) for a in ACCOUNTS if (found := ti.xcom_pull(task_ids=f"{a.extractor}.load"))]
        failed = []
        for account in loaded:
            schema = {f"{env_name(MODELS)}_SCHEMA": f"{account.load_schema}_models"}
            env = {**worker_env(), **warehouse_env(account), **schema}
            dbt_vars = json.dumps({"klaviyo_schema": account.load_schema})
            try:
                run_meltano(MELTANO, PROJECT.root, meltano_args("invoke", MODELS, "build", "--vars", dbt_vars), env)
            except RuntimeError as exc:
                print(exc)
                failed.append(account.extractor)
        if failed:
            raise RuntimeError(f"The models failed to build for {', '.join(failed)}")
        return [account.extractor for account in loaded]

    # A leaf that fails the run when any account's load failed (`models` runs and succeeds regardless).
    every_account_loaded = EmptyOperator(task_id="every_account_loaded", trigger_rule=TriggerRule.ALL_SUCCESS)
    groups >> models()
    groups >> every_account_loaded


if __name__ == "__main__":
    dag.test()  # one run here, in this process (Airflow's own way to try a DAG): `python klaviyo_accounts.py`
