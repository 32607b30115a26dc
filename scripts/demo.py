"""Sync the demo account with the tap's own command line, no Meltano, and print what each stream emitted.

`python scripts/demo.py [--size demo] [--out output/demo-tap.jsonl] [--fresh]`: starts the bundled Klaviyo
emulator on 127.0.0.1, runs `tap-klaviyo --config ... --state ...` against it, appends the Singer messages to
the file and prints per stream the records emitted and how many of them are new (keys not seen before).
The first run reads all history; the tap's last STATE message is kept beside the messages
(`output/demo-tap.state.json`), so the next run is incremental, and the demo account gains new activity
between runs (scripts/demo_account.py). `--fresh` starts over. Like Meltano's demo environment, it reads one
day of reports and re-reads none.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from demo_account import demo_account  # noqa: E402

Keys = dict[str, set[tuple[str, ...]]]


def read_messages(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def record_keys(messages: list[dict[str, Any]]) -> Keys:
    """Distinct primary keys per stream."""
    key_properties: dict[str, list[str]] = {}
    keys: Keys = defaultdict(set)
    for message in messages:
        if message["type"] == "SCHEMA":
            key_properties[message["stream"]] = message["key_properties"]
        elif message["type"] == "RECORD":
            names = key_properties.get(message["stream"], [])
            keys[message["stream"]].add(tuple(str(message["record"].get(name)) for name in names))
    return keys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="demo", choices=["tiny", "demo", "medium", "large"])
    parser.add_argument("--out", type=Path, default=ROOT / "output" / "demo-tap.jsonl")
    parser.add_argument("--fresh", action="store_true", help="start over: forget the state and the messages")
    args = parser.parse_args()
    out: Path = args.out
    state_file = out.with_suffix(".state.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    first = args.fresh or not state_file.exists() or not out.exists()
    if first:
        out.unlink(missing_ok=True)
        state_file.unlink(missing_ok=True)
    seen = record_keys(read_messages(out))

    with (
        demo_account(args.size, out.with_suffix(".activity.json"), first_run=first, rate_limit_scale=0.0) as account,
        tempfile.TemporaryDirectory() as tmp,
    ):
        what = "all history" if first else f"{account.new_events} new events since the last run; incremental"
        print(f"Demo Klaviyo account ({args.size}) on {account.emulator.base_url}: {what}", flush=True)
        config = Path(tmp) / "config.json"
        settings = {**account.config, "report_history_days": 1, "report_lookback_days": 0}
        config.write_text(json.dumps(settings), encoding="utf-8")
        command = [sys.executable, "-m", "tap_klaviyo", "--config", str(config)]
        if not first:
            command += ["--state", str(state_file)]
        run_out = Path(tmp) / "messages.jsonl"
        started = time.monotonic()
        with run_out.open("w", encoding="utf-8") as sink:
            proc = subprocess.run(command, stdout=sink, check=False)
        seconds = time.monotonic() - started
        requests = len(account.emulator.requests)
        if proc.returncode != 0:
            print(f"tap-klaviyo failed with exit code {proc.returncode}", file=sys.stderr)
            return proc.returncode
        messages = read_messages(run_out)
        with out.open("a", encoding="utf-8") as sink, run_out.open(encoding="utf-8") as source:
            sink.writelines(source)

    states = [message["value"] for message in messages if message["type"] == "STATE"]
    if states:
        state_file.write_text(json.dumps(states[-1]) + "\n", encoding="utf-8")
    emitted = Counter(message["stream"] for message in messages if message["type"] == "RECORD")
    keys = record_keys(messages)
    print(f"{'stream':<32}{'records':>10}{'new':>8}")
    for stream in sorted(emitted):
        print(f"{stream:<32}{emitted[stream]:>10}{len(keys[stream] - seen.get(stream, set())):>8}")
    new_total = sum(len(keys[stream] - seen.get(stream, set())) for stream in keys)
    print(f"{'total':<32}{sum(emitted.values()):>10}{new_total:>8}")
    print(f"{requests} requests in {seconds:.1f} s; Singer messages appended to {out}, the state in {state_file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
