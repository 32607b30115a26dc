"""Sync the emulator's demo account with the real command line and print what each stream emitted.

`python scripts/demo.py [--size demo] [--out output/demo.jsonl]`: starts the bundled Klaviyo emulator on
127.0.0.1, runs `tap-klaviyo` against it, writes the Singer messages to a file and prints a table of records
per stream.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.emulator import DEMO_API_KEY, Emulator, EmulatorConfig  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="demo", choices=["tiny", "demo", "medium", "large"])
    parser.add_argument("--out", default=str(ROOT / "output" / "demo.jsonl"))
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        Emulator(EmulatorConfig(size=args.size, rate_limit_scale=0.0)) as emu,
        tempfile.TemporaryDirectory() as tmp,
    ):
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps({"api_key": DEMO_API_KEY, "api_url": emu.base_url}))
        started = time.monotonic()
        with out.open("w", encoding="utf-8") as sink:
            proc = subprocess.run(
                [sys.executable, "-m", "tap_klaviyo", "--config", str(config)], stdout=sink, check=False
            )
        seconds = time.monotonic() - started
        requests = len(emu.requests)
    if proc.returncode != 0:
        print(f"tap-klaviyo failed with exit code {proc.returncode}", file=sys.stderr)
        return proc.returncode
    counts: Counter[str] = Counter()
    with out.open(encoding="utf-8") as lines:
        for line in lines:
            message = json.loads(line)
            if message["type"] == "RECORD":
                counts[message["stream"]] += 1
    print(f"{'stream':<28}{'records':>10}")
    for stream, count in sorted(counts.items()):
        print(f"{stream:<28}{count:>10}")
    print(f"{'total':<28}{sum(counts.values()):>10}")
    print(f"{requests} requests in {seconds:.1f} s; Singer messages in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
