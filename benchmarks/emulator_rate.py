"""Pages per CPU-second of the emulator itself, rate limits off: the pages the tap asks for on the xlarge account.

The emulator runs in a child process (its own CPU clock, read from /proc); a plain HTTP client here walks each
endpoint's pages with the tap's query (page size, sort, includes, sparse fields) and counts them. What the
emulator spends per page is what bounds a full-size run on one core (issue 28: >= 150 pages a second).

`python benchmarks/emulator_rate.py [--fraction 1] [--pages 200] [--again] [--overhead]`
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.run import xlarge_size
from klaviyo_emulator import DEMO_API_KEY, Emulator, EmulatorConfig
from klaviyo_emulator.data import AccountData

HEADERS = {"Authorization": f"Klaviyo-API-Key {DEMO_API_KEY}", "revision": "2026-07-15"}
TICKS = os.sysconf("SC_CLK_TCK")


def serve(size: str, pipe: Connection) -> None:
    """Child: build the account, serve it until told to stop."""
    account = AccountData(size, 1)
    account.precompute()  # as benchmarks/run.py serves it
    with Emulator(EmulatorConfig(size=size, rate_limit_scale=0.0), account=account) as emu:
        emu.api.frozen = True
        lists = sorted(account.expected_ids("list"), key=lambda g: -len(account.members["list"][g]))
        pipe.send((emu.base_url, lists[0]))
        pipe.recv()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def walk(session: requests.Session, url: str, params: dict[str, str] | None, pages: int) -> int:
    done = 0
    next_url: str | None = url
    while next_url and done < pages:
        response = session.get(next_url, params=params, headers=HEADERS, timeout=60)
        response.raise_for_status()
        done += 1
        next_url, params = response.json()["links"].get("next"), None
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fraction", type=float, default=1.0, help="of the xlarge account")
    parser.add_argument("--pages", type=int, default=200, help="per endpoint")
    parser.add_argument(
        "--again",
        action="store_true",
        help="walk the same pages a second time: what the emulator keeps (profile ids, property tails) is known",
    )
    parser.add_argument("--overhead", action="store_true", help="pages of one event: the cost of a request")
    args = parser.parse_args()
    size = xlarge_size(args.fraction)
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    child = multiprocessing.get_context("fork").Process(target=serve, args=(size, theirs), daemon=True)
    built = time.monotonic()
    child.start()
    base, biggest = ours.recv()
    print(f"{size}: account built and served in {time.monotonic() - built:.1f} s")
    cases = {
        "GET /api/events": (
            "/api/events",
            {"page[size]": "1000", "sort": "datetime", "include": "metric", "fields[metric]": "name"},
        ),
        "GET /api/profiles": (
            "/api/profiles",
            {"page[size]": "100", "sort": "updated", "additional-fields[profile]": "subscriptions"},
        ),
        "GET /api/lists/{id}/profiles": (
            f"/api/lists/{biggest}/profiles",
            {"page[size]": "100", "sort": "joined_group_at", "fields[profile]": "joined_group_at"},
        ),
    }
    if args.overhead:
        cases = {"GET /api/events (1 a page)": ("/api/events", {"page[size]": "1", "sort": "datetime"})}
    with requests.Session() as session:
        for name, (path, params) in cases.items():
            walk(session, base + path, params, 2)  # the spec parsed, the first page's caches filled
            for attempt in ("first", "again") if args.again else ("first",):
                cpu, wall = cpu_seconds(child.pid or 0), time.monotonic()
                pages = walk(session, base + path, params, args.pages)
                cpu, wall = cpu_seconds(child.pid or 0) - cpu, time.monotonic() - wall
                print(
                    f"{name:32} {attempt:5} {pages:5} pages  {cpu:6.2f} CPU-s  {pages / cpu:7.1f} pages/CPU-s  "
                    f"{wall:6.2f} s wall"
                )
    ours.send("stop")
    child.join(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
