"""Sync a Klaviyo account into DuckDB through Meltano, then print how many rows each table holds.

`python scripts/sync.py` (the README's first command) sets up everything it needs:

1. Meltano in its own virtual environment (`.meltano/meltano-venv`), then `meltano install` of the tap and
   target-duckdb into theirs (`.meltano/extractors`, `.meltano/loaders`), as pinned in meltano.yml.
2. Without credentials (no `TAP_KLAVIYO_API_KEY`, `TAP_KLAVIYO_REFRESH_TOKEN`, in the environment or in
   Meltano's `.env`) it starts the bundled demo account (the Klaviyo emulator of tests/emulator) on a free
   local port, runs Meltano's `demo` environment against it into `output/demo.duckdb`, and stops it.
   With credentials it syncs the real account into `output/klaviyo.duckdb`, incrementally: Meltano keeps
   the state in its system database, `.meltano/meltano.db`.
3. `meltano run tap-klaviyo target-duckdb`, with Meltano's log in `output/meltano.log`.
4. A row count per table, read from the database.

Options: `--demo` syncs the demo account even with credentials set; `--size` picks its size;
`--verbose` shows every log line (target-duckdb's per-batch lines are left out otherwise); `--output DIR`
writes the database and the log there instead of `output/`.
"""

from __future__ import annotations

import argparse
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

MELTANO_VERSION = "4.4.1"
MELTANO_VENV = ROOT / ".meltano" / "meltano-venv"
OUTPUT = ROOT / "output"
TARGET = "target-duckdb"
CREDENTIAL_VARS = ("TAP_KLAVIYO_API_KEY", "TAP_KLAVIYO_REFRESH_TOKEN")
# Lines of Meltano's log left off the console unless --verbose: the target's per-batch lines, the SDK's
# per-partition metrics and stream setup (the tap's summary at the end carries the counts), and Meltano's
# line for every state message.
QUIET = re.compile(
    r"\[(?:info|debug)\s*\] (?:target-duckdb |tap-klaviyo\s+(?:METRIC|Added '|Skipping parse|Beginning sync)"
    r"|meltano\s+Incremental state has been updated)"
)

COUNT_ROWS = """
import json, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
rows = con.execute(
    "select table_schema, table_name from information_schema.tables "
    "where table_type = 'BASE TABLE' and table_schema = ? order by table_name", [sys.argv[2]]
).fetchall()
print(json.dumps({t: con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0] for s, t in rows}))
"""


def meltano_bin() -> Path:
    return MELTANO_VENV / "bin" / "meltano"


def ensure_meltano() -> Path:
    """Meltano in a virtual environment of its own (installed once, again only when the pin changes)."""
    exe = meltano_bin()
    if exe.exists():
        found = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False).stdout
        if MELTANO_VERSION in found:
            return exe
    print(f"Installing Meltano {MELTANO_VERSION} into {MELTANO_VENV.relative_to(ROOT)} ...", flush=True)
    if MELTANO_VENV.exists():
        shutil.rmtree(MELTANO_VENV)
    subprocess.run([sys.executable, "-m", "venv", str(MELTANO_VENV)], check=True)
    pip = MELTANO_VENV / "bin" / "pip"
    subprocess.run([str(pip), "install", "-q", f"meltano=={MELTANO_VERSION}"], check=True)
    return exe


def meltano_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("MELTANO_SEND_ANONYMOUS_USAGE_STATS", "false")
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


def run_meltano(args: list[str], env: Mapping[str, str], log: Path, *, verbose: bool) -> int:
    """Run Meltano, its whole log to `log`, the interesting lines to the console."""
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
            if verbose or not QUIET.search(line):
                sys.stdout.write(line)
                sys.stdout.flush()
        return proc.wait()


@contextmanager
def demo_account(size: str) -> Iterator[dict[str, str]]:
    """The bundled demo account on a free local port, for as long as the block runs."""
    from tests.emulator import DEMO_API_KEY, Emulator, EmulatorConfig

    with Emulator(EmulatorConfig(size=size)) as emulator:
        print(f"Demo Klaviyo account ({size}) on {emulator.base_url}", flush=True)
        yield {"TAP_KLAVIYO_API_URL": emulator.base_url, "TAP_KLAVIYO_API_KEY": DEMO_API_KEY}


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


def row_counts(database: Path, schema: str = "klaviyo") -> dict[str, int]:
    out = subprocess.run(
        [str(target_python()), "-c", COUNT_ROWS, str(database), schema],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {str(k): int(v) for k, v in json.loads(out).items()}


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def print_counts(counts: Mapping[str, int], database: Path) -> None:
    width = max([len("table"), *map(len, counts)]) + 2
    print(f"\n{'table':<{width}}{'rows':>10}")
    for table, count in counts.items():
        print(f"{table:<{width}}{count:>10}")
    print(f"{'total':<{width}}{sum(counts.values()):>10}")
    print(f"{len(counts)} tables in {shown(database)} (schema klaviyo)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", action="store_true", help="sync the demo account even if credentials are set")
    parser.add_argument("--size", default="demo", choices=["tiny", "demo", "medium", "large"])
    parser.add_argument("--verbose", action="store_true", help="show every line of Meltano's log")
    parser.add_argument("--output", type=Path, help="directory for the database and the log (default: output/)")
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
        env["TARGET_DUCKDB_FILEPATH"] = str(output / ("demo.duckdb" if demo else "klaviyo.duckdb"))

    print("meltano install tap-klaviyo target-duckdb ...", flush=True)
    code = run_meltano(["install", "tap-klaviyo", TARGET], env, log, verbose=args.verbose)
    if code:
        print(f"meltano install failed ({code}); the log is in {shown(log)}", file=sys.stderr)
        return code

    run = ["run", "tap-klaviyo", TARGET]
    if demo:
        environment = ["--environment=demo"]
        database = database_path(environment, env)
        database.unlink(missing_ok=True)  # each demo run starts from a new account: show just that one
        with demo_account(args.size) as demo_env:
            # Nothing of a real account's settings leaks into the demo (both a key and OAuth would be an error).
            clean = {k: v for k, v in env.items() if not k.startswith("TAP_KLAVIYO_")}
            code = run_meltano([*environment, *run, "--full-refresh"], {**clean, **demo_env}, log, verbose=args.verbose)
    else:
        database = database_path([], env)
        print("Syncing the Klaviyo account of your credentials (incremental after the first run)", flush=True)
        code = run_meltano(run, env, log, verbose=args.verbose)
    if code:
        print(f"meltano run failed ({code}); the log is in {shown(log)}", file=sys.stderr)
        return code

    print_counts(row_counts(database), database)
    print(f"Done in {time.monotonic() - started:.0f} s. Meltano's log: {shown(log)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
