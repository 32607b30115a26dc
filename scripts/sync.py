"""Sync a Klaviyo account into DuckDB through Meltano, then print how many rows each table holds.

`python scripts/sync.py` (the README's first command) sets up everything it needs:

1. Meltano in its own virtual environment (`.meltano/meltano-venv`), then `meltano install` of the tap and
   target-duckdb into theirs (`.meltano/extractors`, `.meltano/loaders`), as pinned in meltano.yml.
2. With credentials (`TAP_KLAVIYO_API_KEY`, or OAuth's `TAP_KLAVIYO_REFRESH_TOKEN` and client, in the
   environment or in Meltano's `.env`) it syncs that account into `output/klaviyo_account.duckdb`.
   Without them it starts the bundled demo account (the Klaviyo emulator of klaviyo_emulator) on a free local
   port, runs Meltano's `demo` environment against it into `output/demo.duckdb`, and stops it; every demo
   run after the first finds new activity in the account (scripts/demo_account.py).
   Either way the first run reads all history and later runs are incremental: Meltano keeps the state in its
   system database, `.meltano/meltano.db`, per environment. A database file that does not exist (yet) is
   filled by a full sync, whatever the state says.
3. `meltano run tap-klaviyo target-duckdb`, with Meltano's log in `output/meltano.log`.
4. A row count per table, read from the database, with the rows this run added.
5. The warehouse models (dbt_klaviyo/, Meltano's dbt-duckdb utility) built into the same file, schema
   klaviyo_models (incremental after the first run), and the top campaigns and flows by attributed revenue.

Options: `--demo` syncs the demo account even with credentials set; `--fresh` starts over (the demo: a new
database and account; a real account: a full sync, rows updated in place); `--size` picks the demo's size;
`--verbose` shows every log line (target-duckdb's per-batch lines are left out otherwise); `--output DIR`
writes the database and the log there instead of `output/`; `--no-models` loads only (no dbt).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

MELTANO_VERSION = "4.4.1"
MELTANO_VENV = ROOT / ".meltano" / "meltano-venv"
OUTPUT = ROOT / "output"
TARGET = "target-duckdb"
MODELS = "dbt-duckdb"  # the utility in meltano.yml that builds dbt_klaviyo/
MODELS_SCHEMA = "klaviyo_models"  # its `schema` setting
CREDENTIAL_VARS = ("TAP_KLAVIYO_API_KEY", "TAP_KLAVIYO_REFRESH_TOKEN")
# Lines of Meltano's log left off the console unless --verbose: the target's per-batch lines, the SDK's
# per-partition metrics and stream setup (the tap's summary at the end carries the counts), and Meltano's
# line for every state message.
QUIET = re.compile(
    r"\[(?:info|debug)\s*\] (?:target-duckdb |tap-klaviyo\s+(?:METRIC|Added '|Skipping parse|Beginning sync)"
    r"|meltano\s+Incremental state has been updated)"
)

SCHEMA = "klaviyo"  # the extractor's load_schema in meltano.yml
# dbt's lines shown on the console (the whole of its output goes to the log).
DBT_SHOWN = re.compile(r"Done\. PASS|ERROR|FAIL|WARN|Completed|Runtime Error|Compilation Error|Database Error")
# Fully qualified (database.schema.table): a database file named like the schema must not make it ambiguous.
COUNT_ROWS = """
import json, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
db = con.execute("select current_database()").fetchone()[0]
rows = con.execute(
    "select table_name from information_schema.tables "
    "where table_type = 'BASE TABLE' and table_catalog = ? and table_schema = ? order by table_name",
    [db, sys.argv[2]],
).fetchall()
q = lambda name: '"' + name.replace('"', '""') + '"'
print(json.dumps({t: con.execute(f"select count(*) from {q(db)}.{q(sys.argv[2])}.{q(t)}").fetchone()[0]
                  for (t,) in rows}))
"""


# Rows of one query, as JSON.
QUERY = """
import json, sys, duckdb
rows = duckdb.connect(sys.argv[1], read_only=True).execute(sys.argv[2]).fetchall()
print(json.dumps(rows, default=str))
"""
TOP_CAMPAIGNS = f"""
select campaign_name, channel, sends, opens, clicks, attributed_orders, round(attributed_revenue, 2),
       round(klaviyo_conversion_value, 2)
from {MODELS_SCHEMA}.klaviyo__campaigns order by attributed_revenue desc, campaign_id limit 5
"""
TOP_FLOWS = f"""
select flow_name, message_count, sends, opens, clicks, attributed_orders, round(attributed_revenue, 2),
       round(klaviyo_conversion_value, 2)
from {MODELS_SCHEMA}.klaviyo__flows order by attributed_revenue desc, flow_id limit 5
"""
TOP_HEADER = ("sends", "opens", "clicks", "orders", "revenue", "klaviyo")


def meltano_bin() -> Path:
    return MELTANO_VENV / "bin" / "meltano"


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Held by one process at a time (parallel test workers, two syncs): one installs, the others wait and reuse."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def uv_bin() -> str | None:
    """uv beside this interpreter (the dev extra installs it) or on the PATH; pip otherwise."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.exists() else shutil.which("uv")


def ensure_tool(venv: Path, package: str, version: str, executable: str) -> Path:
    """A tool in a virtual environment of its own (installed once, again only when the pin changes), with uv
    when there is one (seconds instead of a minute for Airflow), else pip. Its bytecode is compiled at install
    (pip does so anyway): where PYTHONDONTWRITEBYTECODE is set, nothing caches it later, and every start of
    Meltano would compile it again (1.9 s instead of 0.6 s)."""
    exe = venv / "bin" / executable
    with locked(venv.with_name(f"{venv.name}.lock")):
        if exe.exists():
            query = f"import importlib.metadata as m; print(m.version({package!r}))"
            python = str(venv / "bin" / "python")
            found = subprocess.run([python, "-c", query], capture_output=True, text=True, check=False)
            if found.stdout.strip() == version:
                return exe
        print(f"Installing {package} {version} into {venv.relative_to(ROOT)} ...", flush=True)
        if venv.exists():
            shutil.rmtree(venv)
        uv = uv_bin()
        if uv is None:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"{package}=={version}"], check=True)
        else:
            subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
            python = str(venv / "bin" / "python")
            install = [uv, "pip", "install", "-q", "--compile-bytecode", "--python", python, f"{package}=={version}"]
            subprocess.run(install, check=True)
    return exe


def ensure_meltano() -> Path:
    """Meltano in a virtual environment of its own."""
    return ensure_tool(MELTANO_VENV, "meltano", MELTANO_VERSION, "meltano")


def meltano_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("MELTANO_SEND_ANONYMOUS_USAGE_STATS", "false")
    # Meltano installs the plugins with uv: their bytecode compiled then, not on every start where
    # PYTHONDONTWRITEBYTECODE is set (dbt starts in 1.5 s instead of 2.8 s).
    env.setdefault("UV_COMPILE_BYTECODE", "1")
    env.update(extra or {})
    return env


def has_credentials(env: Mapping[str, str], dotenv: Path = ROOT / ".env") -> bool:
    """Credentials in the environment, or in the .env file where `meltano config ... set` keeps secrets."""
    if any(env.get(name) for name in CREDENTIAL_VARS):
        return True
    if dotenv.exists():
        for line in dotenv.read_text(encoding="utf-8").splitlines():
            name, _, value = line.partition("=")
            if name.strip() in CREDENTIAL_VARS and value.strip().strip("'\""):
                return True
    return False


def run_meltano(
    args: list[str], env: Mapping[str, str], log: Path, *, verbose: bool, shown: re.Pattern[str] | None = None
) -> int:
    """Run Meltano, its whole log to `log`, the interesting lines (all but QUIET, or those `shown`) to the
    console."""
    cmd = [str(meltano_bin()), *args]
    with log.open("a", encoding="utf-8") as sink:
        sink.write(f"$ meltano {' '.join(args)}\n")
        sink.flush()
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            sink.write(line)
            if verbose or (shown.search(line) if shown else not QUIET.search(line)):
                sys.stdout.write(line)
                sys.stdout.flush()
        return proc.wait()


def database_path(meltano_args: list[str], env: Mapping[str, str]) -> Path:
    """Where target-duckdb writes, as Meltano resolves it (meltano.yml, the environment, `meltano config`)."""
    out = subprocess.run(
        [str(meltano_bin()), *meltano_args, "config", "print", TARGET],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return Path(json.loads(out)["filepath"])


def target_python() -> Path:
    """target-duckdb's interpreter (it has duckdb), in Meltano's plugin directory."""
    sys_dir = Path(os.environ.get("MELTANO_SYS_DIR_ROOT") or ROOT / ".meltano")
    return sys_dir / "loaders" / TARGET / "venv" / "bin" / "python"


def row_counts(database: Path, schema: str = SCHEMA) -> dict[str, int]:
    """Rows per table of the schema; nothing for a database that does not exist yet."""
    if not database.exists():
        return {}
    out = subprocess.run(
        [str(target_python()), "-c", COUNT_ROWS, str(database), schema],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {str(k): int(v) for k, v in json.loads(out).items()}


def query(database: Path, sql: str) -> list[list[object]]:
    """Rows of one query on the database (through target-duckdb's duckdb)."""
    out = subprocess.run(
        [str(target_python()), "-c", QUERY, str(database), sql], capture_output=True, text=True, check=True
    ).stdout
    return list(json.loads(out))


def build_models(environment: list[str], env: Mapping[str, str], database: Path, log: Path, *, verbose: bool) -> int:
    """`dbt build` of the warehouse models into the database just loaded (dbt's files next to the log)."""
    print(f"meltano invoke {MODELS} build: the models into {shown(database)} ({MODELS_SCHEMA}) ...", flush=True)
    dbt_env = {
        **env,
        "DBT_DUCKDB_PATH": str(database),
        "DBT_TARGET_PATH": str(log.parent / "dbt" / "target"),
        "DBT_LOG_PATH": str(log.parent / "dbt" / "logs"),
        "DBT_USE_COLORS": "false",
    }
    return run_meltano([*environment, "invoke", MODELS, "build"], dbt_env, log, verbose=verbose, shown=DBT_SHOWN)


def print_top(database: Path) -> None:
    """The campaigns and flows that made the most money, with Klaviyo's own figure beside ours."""
    for title, sql in (("campaign", TOP_CAMPAIGNS), ("flow", TOP_FLOWS)):
        rows = query(database, sql)
        names = [str(row[0])[:34] for row in rows]
        width = max([len(title), *map(len, names)]) + 2
        extra = "channel" if title == "campaign" else "messages"
        print(f"\nTop {title}s by attributed revenue ({MODELS_SCHEMA}.klaviyo__{title}s)")
        print(f"{title:<{width}}{extra:>12}" + "".join(f" {h:>10}" for h in TOP_HEADER))
        for name, row in zip(names, rows, strict=True):
            figures = "".join(f" {'-' if v is None else v:>10}" for v in row[2:])
            print(f"{name:<{width}}{row[1]!s:>12}{figures}")
    print(
        "(revenue: all orders credited by Klaviyo's attribution or the last touch; klaviyo: its values report,"
        " by send date over the last year: 0.0 sent before it, - not sent; README, docs/models.md)"
    )


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def print_counts(counts: Mapping[str, int], before: Mapping[str, int], database: Path) -> None:
    """Rows per table, and how many this run added."""
    width = max([len("table"), *map(len, counts)]) + 2
    print(f"\n{'table':<{width}}{'rows':>10}{'new':>8}")
    for table, count in counts.items():
        print(f"{table:<{width}}{count:>10}{count - before.get(table, 0):>8}")
    total, new = sum(counts.values()), sum(counts.values()) - sum(before.values())
    print(f"{'total':<{width}}{total:>10}{new:>8}")
    print(f"{len(counts)} tables in {shown(database)} (schema {SCHEMA}): select count(*) from {SCHEMA}.event")


# The database file of earlier versions, named like its schema, which made `klaviyo.event` ambiguous in DuckDB.
OLD_DATABASE = f"{SCHEMA}.duckdb"


def move_old_database(database: Path) -> None:
    """Keep an earlier version's database (and its state) in use under the new name."""
    old = database.with_name(OLD_DATABASE)
    if database.name != OLD_DATABASE and not database.exists() and old.exists():
        old.rename(database)
        print(
            f"Renamed {shown(old)} to {shown(database)}: DuckDB names the database after its file, and a "
            f"database named like the schema makes `{SCHEMA}.event` ambiguous",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", action="store_true", help="sync the demo account even if credentials are set")
    parser.add_argument("--fresh", action="store_true", help="start over: ignore the state (the demo: a new database)")
    parser.add_argument("--size", default="demo", choices=["tiny", "demo", "medium", "large"])
    parser.add_argument("--verbose", action="store_true", help="show every line of Meltano's log")
    parser.add_argument("--output", type=Path, help="directory for the database and the log (default: output/)")
    parser.add_argument("--no-models", action="store_true", help="load only: do not build the warehouse models")
    args = parser.parse_args()

    started = time.monotonic()
    output: Path = (args.output or OUTPUT).resolve()
    output.mkdir(parents=True, exist_ok=True)
    log = output / "meltano.log"
    log.write_text("", encoding="utf-8")
    ensure_meltano()
    env = meltano_env()
    demo = args.demo or not has_credentials(env)
    if args.output:
        env["TARGET_DUCKDB_FILEPATH"] = str(output / ("demo.duckdb" if demo else "klaviyo_account.duckdb"))

    plugins = ["tap-klaviyo", TARGET] if args.no_models else ["tap-klaviyo", TARGET, MODELS]
    print(f"meltano install {' '.join(plugins)} ...", flush=True)
    code = run_meltano(["install", *plugins], env, log, verbose=args.verbose)
    if code:
        print(f"meltano install failed ({code}); the log is in {shown(log)}", file=sys.stderr)
        return code

    environment = ["--environment=demo"] if demo else []
    database = database_path(environment, env)
    if demo and args.fresh:
        database.unlink(missing_ok=True)
    move_old_database(database)
    if database.stem == SCHEMA:
        print(f"Note: {shown(database)} is named like its schema: in DuckDB write {SCHEMA}.{SCHEMA}.event", flush=True)
    first = not database.exists()
    run = [*environment, "run", "tap-klaviyo", TARGET]
    if first or args.fresh:
        # The database and the state go together: rows the state says were read must be in the database.
        run.append("--full-refresh")
    before = row_counts(database)
    if demo:
        from demo_account import demo_account

        with demo_account(args.size, database.with_suffix(".activity.json"), first_run=first) as account:
            what = "a full sync" if first else f"{account.new_events} new events since the last run; incremental"
            print(f"Demo Klaviyo account ({args.size}) on {account.emulator.base_url}: {what}", flush=True)
            # Nothing of a real account's settings leaks into the demo (both a key and OAuth would be an error).
            clean = {k: v for k, v in env.items() if not k.startswith("TAP_KLAVIYO_")}
            code = run_meltano(run, {**clean, **account.env}, log, verbose=args.verbose)
    else:
        how = "all history (a full sync)" if "--full-refresh" in run else "incremental (Meltano's state)"
        print(f"Syncing the Klaviyo account of your credentials into {shown(database)}: {how}", flush=True)
        code = run_meltano(run, env, log, verbose=args.verbose)
    if code:
        print(f"meltano run failed ({code}); the log is in {shown(log)}", file=sys.stderr)
        return code

    print_counts(row_counts(database), before, database)
    if not args.no_models:
        code = build_models(environment, env, database, log, verbose=args.verbose)
        if code:
            print(f"the warehouse models failed ({code}); dbt's output is in {shown(log)}", file=sys.stderr)
            return code
        print_top(database)
    print(f"Done in {time.monotonic() - started:.0f} s. Meltano's log: {shown(log)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
