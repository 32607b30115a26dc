"""End-to-end helpers: Meltano (installed as `scripts/sync.py` installs it), real targets, and row checks.

The tests run the project's own meltano.yml against the emulator. Meltano itself is shared with
`scripts/sync.py` (`.meltano/meltano-venv`), but everything Meltano keeps per project lives in temporary
directories: plugin virtual environments and run files (`MELTANO_SYS_DIR_ROOT`, one per test session, so a
`meltano run` of the user's, or of another test session, never shares `.meltano/run/` with a test) and the
system database with its state (one per test module). Every target writes somewhere temporary too: a
user's `.meltano/` and `output/` are never touched.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from klaviyo_emulator import DEMO_API_KEY, Emulator
from tests.harness import ROOT, SyncResult, run_tap

sys.path.insert(0, str(ROOT / "scripts"))
import sync as sync_script

Keys = dict[str, set[tuple[str, ...]]]
# Settings environments may carry that would change what these tests run.
_FOREIGN_ENV = ("TAP_KLAVIYO_", "TARGET_", "MELTANO_")


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}


def clean_env() -> dict[str, str]:
    """This process's environment without the tap's, targets' and Meltano's settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_ENV)}


_sys_dir: Path | None = None


def sys_dir() -> Path:
    """Meltano's plugin and run directory for this test session (installed plugins are reused within it)."""
    global _sys_dir
    if _sys_dir is None:
        _sys_dir = Path(tempfile.mkdtemp(prefix="tap-klaviyo-meltano-"))
        atexit.register(shutil.rmtree, _sys_dir, True)
    return _sys_dir


@dataclass
class Meltano:
    """`meltano` of this project, with its system database (state) in `home`."""

    exe: Path
    home: Path
    #: The Meltano project (its meltano.yml) the commands run in.
    project: Path = ROOT

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = clean_env()
        env["MELTANO_SYS_DIR_ROOT"] = str(sys_dir())
        env["MELTANO_DATABASE_URI"] = f"sqlite:///{self.home / 'meltano.db'}"
        env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
        env["UV_COMPILE_BYTECODE"] = "1"  # plugins compiled once at install (scripts/sync.py's meltano_env says why)
        env.update(extra or {})
        return env

    def __call__(self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 600) -> str:
        proc = subprocess.run(
            [str(self.exe), *args],
            cwd=self.project,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode:
            log = (proc.stdout + proc.stderr)[-6000:]
            pytest.fail(f"meltano {' '.join(args)} exited {proc.returncode}:\n{log}")
        return proc.stdout

    def config(self, plugin: str, env: Mapping[str, str]) -> dict[str, Any]:
        """The exact config Meltano hands the plugin (defaults, meltano.yml, environment variables)."""
        return dict(json.loads(self("config", "--unsafe", "print", plugin, env=env)))

    def state(self, state_id: str) -> dict[str, Any]:
        return dict(json.loads(self("state", "get", state_id)))

    @staticmethod
    def python(loader: str) -> Path:
        """The interpreter of an installed loader."""
        return sys_dir() / "loaders" / loader / "venv" / "bin" / "python"

    @staticmethod
    def utility_python(utility: str) -> Path:
        """The interpreter of an installed utility (dbt-duckdb's has duckdb)."""
        return sys_dir() / "utilities" / utility / "venv" / "bin" / "python"


def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test session's temporary root, shared by its xdist workers (each has its own basetemp below it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def e2e_required() -> bool:
    """Under CI (`CI`, `REQUIRE_E2E`) what the end-to-end tests cannot install is a failure, not a skip."""
    return _truthy("CI") or _truthy("REQUIRE_E2E")


def tool_or_skip(install: Callable[[], Path], what: str) -> Path:
    """A tool installed in its own virtual environment if needed; a skip (under CI, a failure) if impossible."""
    try:
        return install()
    except (subprocess.CalledProcessError, OSError) as exc:
        if e2e_required():
            raise
        pytest.skip(f"{what} could not be installed (no access to PyPI?): {exc}")


def meltano_exe() -> Path:
    """The shared Meltano (`.meltano/meltano-venv`)."""
    return tool_or_skip(sync_script.ensure_meltano, "Meltano")


def meltano_for_tests(home: Path, plugins: Iterable[str], project: Path = ROOT) -> Meltano:
    """Meltano and the given plugins, installed if needed; a skip (or, under CI, a failure) if impossible."""
    meltano = Meltano(meltano_exe(), home, project)
    meltano("install", *plugins, timeout=1200)
    return meltano


def account_extractor(name: str) -> str:
    """The extractor of one account of an accounts_project."""
    return f"tap-klaviyo--{name}"


def account_env_var(name: str, setting: str) -> str:
    """Meltano's environment variable for a setting of the account's extractor."""
    return f"TAP_KLAVIYO__{name.upper().replace('-', '_')}_{setting.upper()}"


def accounts_project(directory: Path, accounts: Iterable[str], streams: Iterable[str]) -> Path:
    """This repository's Meltano project in `directory` (its plugins from this clone, by path; the models'
    dbt project copied beside it), with one extractor per account inheriting from `tap-klaviyo`, each
    loading into a schema of its own name. The user's meltano.yml is never edited."""
    text = (ROOT / "meltano.yml").read_text()
    assert "    pip_url: -e .\n" in text and text.count("\n  loaders:\n") == 1
    select = "".join(f"\n    - {stream}.*" for stream in streams)
    extractors = "".join(
        f"  - name: {account_extractor(name)}\n    inherit_from: tap-klaviyo\n"
        f"    load_schema: {name.replace('-', '_')}\n    select:{select}\n"
        for name in accounts
    )
    text = text.replace("    pip_url: -e .\n", f"    pip_url: -e {ROOT}\n")
    text = text.replace("\n  loaders:\n", "\n" + extractors + "  loaders:\n")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "meltano.yml").write_text(text)
    ignore = shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml")
    shutil.copytree(ROOT / "dbt_klaviyo", directory / "dbt_klaviyo", ignore=ignore, dirs_exist_ok=True)
    return directory


def tap_env(emu: Emulator, **settings: Any) -> dict[str, str]:
    """Meltano environment variables pointing the tap at the emulator, plus any settings (JSON-encoded)."""
    env = {"TAP_KLAVIYO_API_URL": emu.base_url, "TAP_KLAVIYO_API_KEY": DEMO_API_KEY}
    for name, value in settings.items():
        env[f"TAP_KLAVIYO_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def e2e_settings(emu: Emulator) -> dict[str, Any]:
    """Small and quick: one day of reports (they pace themselves at 2 requests a minute), every stream."""
    return {
        "report_history_days": 1,
        "report_lookback_days": 0,
        "metric_aggregate_queries": [
            {
                "name": "daily_orders",
                "metric_id": emu.account.metric_id("Placed Order"),
                "measurements": ["count", "sum_value"],
                "interval": "day",
            }
        ],
    }


def emitted_keys(result: SyncResult) -> Keys:
    """Distinct primary keys per stream of one tap run."""
    keys: Keys = defaultdict(set)
    for stream, records in result.records.items():
        names = result.key_properties[stream]
        keys[stream].update(tuple(str(record.get(name)) for name in names) for record in records)
    return keys


def run_tap_as_meltano_would(
    meltano: Meltano, env: Mapping[str, str], state: dict[str, Any] | None = None
) -> SyncResult:
    """The tap alone (in this process), with exactly Meltano's config for it: what a `meltano run` emits."""
    result = run_tap(meltano.config("tap-klaviyo", env), state=state)
    assert result.records, result.stderr[-3000:]
    return result


# -- what the tables hold ---------------------------------------------------------------------------------


@dataclass
class TableCounts:
    rows: int
    distinct_keys: int


def _counts_sql(tables: Mapping[str, list[str]], schema: str, quote: str = '"') -> str:
    parts = []
    for table, keys in sorted(tables.items()):
        cols = ", ".join(f"{quote}{k}{quote}" for k in keys)
        ref = f"{quote}{schema}{quote}.{quote}{table}{quote}"
        parts.append(
            f"select '{table}' as t, (select count(*) from {ref}) as n, "
            f"(select count(*) from (select distinct {cols} from {ref}) d) as k"
        )
    return " union all ".join(parts)


def duckdb_query(database: Path, sql: str) -> list[list[Any]]:
    """Rows of one query, through target-duckdb's own duckdb (the test venv has none)."""
    python = Meltano.python("target-duckdb")
    code = (
        "import duckdb, json, sys\n"
        "rows = duckdb.connect(sys.argv[1], read_only=True).execute(sys.argv[2]).fetchall()\n"
        "print(json.dumps(rows, default=str))"
    )
    proc = subprocess.run([str(python), "-c", code, str(database), sql], capture_output=True, text=True, check=True)
    return list(json.loads(proc.stdout))


def duckdb_counts(database: Path, tables: Mapping[str, list[str]], schema: str = "klaviyo") -> dict[str, TableCounts]:
    """Rows and distinct keys per table."""
    sql = f"select table_name from information_schema.tables where table_schema = '{schema}'"
    existing = {row[0] for row in duckdb_query(database, sql)}
    present = {t: k for t, k in tables.items() if t in existing}
    if not present:
        return {}
    return {t: TableCounts(int(n), int(k)) for t, n, k in duckdb_query(database, _counts_sql(present, schema))}


# -- PostgreSQL -----------------------------------------------------------------------------------------


@dataclass
class Postgres:
    url: str

    @property
    def target_env(self) -> dict[str, str]:
        parts = urlsplit(self.url)
        return {
            "TARGET_POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "TARGET_POSTGRES_PORT": str(parts.port or 5432),
            "TARGET_POSTGRES_USER": parts.username or "postgres",
            "TARGET_POSTGRES_PASSWORD": parts.password or "",
            "TARGET_POSTGRES_DATABASE": parts.path.lstrip("/") or "postgres",
        }

    def query(self, sql: str) -> list[list[str]]:
        psql = shutil.which("psql") or "psql"
        proc = subprocess.run(
            [psql, self.url, "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode:
            raise RuntimeError(f"psql failed: {proc.stderr.strip()}")
        return [line.split("\t") for line in proc.stdout.splitlines() if line]

    def counts(self, tables: Mapping[str, list[str]], schema: str) -> dict[str, TableCounts]:
        existing = {
            row[0]
            for row in self.query(f"select table_name from information_schema.tables where table_schema = '{schema}'")
        }
        present = {t: k for t, k in tables.items() if t in existing}
        if not present:
            return {}
        return {t: TableCounts(int(n), int(k)) for t, n, k in self.query(_counts_sql(present, schema))}

    def table_digests(self, tables: Iterable[str], schema: str) -> dict[str, tuple[int, str]]:
        """Per table: rows, and an md5 over every row's columns but the loader's own (`_sdc_*`), in a fixed
        order (two loads of the same records give the same digest whatever order they came in)."""
        row = "(select jsonb_object_agg(key, value) from jsonb_each(to_jsonb(t)) where key not like '\\_sdc\\_%')"
        out = {}
        for table in tables:
            rows = f'select {row}::text r from "{schema}"."{table}" t'
            found = self.query(f"select count(*), md5(coalesce(string_agg(r, '|' order by r), '')) from ({rows}) x")
            out[table] = (int(found[0][0]), found[0][1])
        return out


def postgres_or_skip() -> Postgres:
    """The PostgreSQL of TEST_POSTGRES_URL (`.ci/run` starts one); without it a skip, or a failure in CI."""
    url = os.environ.get("TEST_POSTGRES_URL")
    reason = ""
    if not url:
        reason = "no PostgreSQL: set TEST_POSTGRES_URL=postgresql://user@host:port/db (bash .ci/run starts one)"
    elif not shutil.which("psql"):
        reason = "psql (Debian's postgresql-client) is not installed"
    else:
        try:
            Postgres(url).query("select 1")
        except RuntimeError as exc:
            reason = f"PostgreSQL at TEST_POSTGRES_URL is unreachable: {exc}"
    if reason:
        if _truthy("REQUIRE_POSTGRES"):
            pytest.fail(f"REQUIRE_POSTGRES is set but {reason}")
        pytest.skip(reason)
    assert url is not None
    return Postgres(url)


# -- the checks -----------------------------------------------------------------------------------------


def assert_tables_hold(counts: Mapping[str, TableCounts], expected: Keys, what: str) -> None:
    """Every stream that emitted records has a table with exactly its distinct keys, one row each."""
    problems = []
    for stream, keys in sorted(expected.items()):
        found = counts.get(stream)
        if found is None:
            problems.append(f"{stream}: no table ({len(keys)} keys emitted)")
        elif found.rows != len(keys) or found.distinct_keys != len(keys):
            problems.append(f"{stream}: {found.rows} rows, {found.distinct_keys} distinct keys, {len(keys)} emitted")
    assert not problems, f"{what}:\n" + "\n".join(problems)


def mutate_account(emu: Emulator) -> dict[str, set[tuple[str, ...]]]:
    """New records between two runs: events, a profile who joins a list; an existing list is updated."""
    account = emu.account
    now = datetime.now(timezone.utc)
    events = account.append_events(5, when=now)
    profile = account.add_profile()
    list_id = sorted(account.expected_ids("list"))[0]
    account.add_list_member(list_id, profile, joined_at=now)
    account.touch("list", sorted(account.expected_ids("list"))[1], now)
    return {
        "event": {(event,) for event in events},
        "profile": {(profile,)},
        "profile_list": {(list_id, profile)},
    }


def assert_second_run_adds_only_new(
    before: Mapping[str, TableCounts],
    after: Mapping[str, TableCounts],
    first: Keys,
    second: Keys,
    created: Mapping[str, set[tuple[str, ...]]],
) -> None:
    """The second run's tables grew by exactly the keys the first run had not seen, and those are the
    records created in between (a profile may also bring its suppressions)."""
    new = {stream: second.get(stream, set()) - first.get(stream, set()) for stream in set(first) | set(second)}
    for stream, keys in created.items():
        assert new[stream] == keys, f"{stream}: second run emitted new keys {new[stream]}, created {keys}"
    unexpected = {
        s: k for s, k in new.items() if k and s not in created and s not in {"global_exclusion", "list_exclusion"}
    }
    assert not unexpected, f"new keys nobody created: {unexpected}"
    union = {stream: first.get(stream, set()) | second.get(stream, set()) for stream in new}
    assert_tables_hold(after, union, "after the second run")
    for stream, keys in new.items():
        grew = after[stream].rows - (before[stream].rows if stream in before else 0)
        assert grew == len(keys), f"{stream}: {grew} rows added, {len(keys)} new keys"
