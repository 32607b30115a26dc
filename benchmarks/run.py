"""How fast tap-klaviyo syncs, against the bundled Klaviyo emulator with Klaviyo's rate limits and latency.

`python benchmarks/run.py` runs, each time against a fresh emulator (Klaviyo's per-endpoint burst/steady
limits from the spec, 150 ms +- 50 ms of latency per request) and the real command line in a subprocess:

1. a full sync of the medium account (5,000 profiles, 100,000 events, 50 lists and 50 segments with
   members, 50 flows, 200 campaigns, ...) with the default settings: per stream records, requests, 429s
   and seconds; the run's wall time; the rate-limit floor (below) and wall / floor;
2. the same sync with `max_concurrency=1`: its wall time, the ratio, and whether both runs emitted the same
   records (same keys and contents per stream; reports only by key, their values accrue with the clock);
3. the event stream alone at zero latency (three times) and the profile stream alone (large account, once):
   records per CPU-second of the tap process;
4. the large account (100,000 profiles, 1,000,000 events, a start_date that leaves 548,000 of them), events
   and profiles only: wall, CPU, peak RSS, wall / floor;
5. an account whose limits are a fifth of the published ones (the demo account's full sync): 429s among
   the requests, wall / floor at those limits;
7. the warehouse models (dbt_klaviyo/) on the account loaded into DuckDB through Meltano (benchmarks/models.py):
   a full build, an incremental one, `dbt run` alone.

The rate-limit floor: for each endpoint, the least time its burst (per second) and steady (per minute)
limits allow for the requests the account's data needs at the largest page size, with `include=` where it
replaces a fan-out (flow actions, campaign messages), plus one round trip. Two models of the limits:
"sliding window" reads them as "at most B in any second and S in any minute" (a client cannot know where a
server's fixed windows start); "token bucket" as a bucket of B requests refilled at S a minute. Two ways to
add endpoints up: the sum (streams one after another; the medium account's figure, kept comparable with
earlier results) and the largest (streams overlap; the large account's figure, where both endpoints run
from the run's start).

Reports are read for `report_history_days=1` (2 requests each): Klaviyo allows 2 report requests a minute,
so 30 days would add 15 minutes of waiting per report that no client can shorten.

6. the xlarge account (1,000,000 profiles, 10,000,000 events, 20 lists; profiles and memberships computed
   from their index), events, profiles and list memberships in full: wall against the binding endpoint's
   floor, peak RSS, the spool's peak on disk and what the run left in its TMPDIR, counts against the
   emulator's, requests against their minimum.

7. BATCH files against RECORD messages: events (the `--size` account) and profiles (the large account)
   alone at zero latency, each path `--cpu-runs` times, records per CPU-second; the rows in the files are
   counted against the records the run reports.

Options: `--quick` (demo account, no large run), `--skip-sequential`, `--skip-large`, `--skip-zero-latency`,
`--skip-xlarge`, `--only-xlarge` (replaces section 6 of the results file), `--xlarge-fraction`, `--skip-batch`,
`--only-batch` (replaces section 7), `--baseline` (section 7 also runs the RECORD path of the tap in another
checkout, the previous engine, in turn with this one),
`--skip-reduced`, `--reduced-size`, `--reduced-scale`, `--skip-models`, `--only-models`,
`--cpu-runs` (zero-latency runs, median reported; default 3), `--size`, `--large-size`, `--latency-ms`,
`--jitter-ms`, `--out` (results file, default benchmarks/results.md; `--out -` writes none).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import gzip
import hashlib
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import write_case  # noqa: E402
from klaviyo_core import spec  # noqa: E402
from klaviyo_emulator import DEMO_API_KEY, Emulator, EmulatorConfig  # noqa: E402
from klaviyo_emulator.api import fixed_page_size  # noqa: E402
from klaviyo_emulator.data import SIZES, AccountData, SizeSpec  # noqa: E402
from klaviyo_emulator.records import micros  # noqa: E402
from klaviyo_emulator.spec import get_spec  # noqa: E402
from tap_klaviyo.streams.flows import MESSAGELESS_ACTIONS  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from models import time_models  # noqa: E402

#: Streams whose record values depend on when they are read (report values accrue until now).
TIME_DEPENDENT = {"campaign_values_report", "flow_values_report", "metric_aggregate"}
PEAK = re.compile(r"summary: peak memory (\d+) MB")
SUMMARY = re.compile(r"summary: (\S+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)")


# -- the rate-limit floor ------------------------------------------------------------------------------


def least_time(requests: int, burst: int, steady: int) -> float:
    """Seconds from the first to the last of `requests` sent as early as 'at most `burst` in any second and
    `steady` in any minute' allows."""
    sent: list[float] = []
    for k in range(requests):
        at = sent[-1] if sent else 0.0
        if k >= burst:
            at = max(at, sent[k - burst] + 1.0)
        if k >= steady:
            at = max(at, sent[k - steady] + 60.0)
        sent.append(at)
    return sent[-1] if sent else 0.0


def bucket_time(requests: int, burst: int, steady: int) -> float:
    """The same for a token bucket of `burst` requests refilled at `steady` a minute."""
    return max(0.0, (requests - burst) * 60.0 / steady)


def scaled(value: int, scale: float) -> int:
    """A limit as the emulator scales it."""
    return max(1, int(value * scale)) if scale > 0 else value


def pages(count: int, size: int) -> int:
    return max(1, math.ceil(count / size))


def page_size(path: str, method: str = "get") -> int:
    endpoint = spec.endpoint(path, method)
    if endpoint.max_page_size:
        return endpoint.max_page_size
    return fixed_page_size(get_spec().operation(method.upper(), path))


def _marketing(profile: Any) -> dict[str, Any]:
    return ((profile.attrs.get("subscriptions") or {}).get("email") or {}).get("marketing") or {}


def plan(account: AccountData, report_days: int) -> dict[str, tuple[int, str]]:
    """Endpoint -> (requests the data needs, why), for the streams a default sync selects."""
    out: dict[str, tuple[int, str]] = {}

    def add(path: str, requests: int, why: str, method: str = "GET") -> None:
        key = f"{method} {path}"
        before, reason = out.get(key, (0, ""))
        out[key] = (before + requests, f"{reason}; {why}" if reason else why)

    def collection(path: str, rtype: str, why: str = "") -> None:
        n = len(account.records(rtype))
        add(path, pages(n, page_size(path)), why or f"{n:,} {rtype}s / {page_size(path)}")

    add("/api/accounts", 1, "one account")
    collection("/api/metrics", "metric")
    events = account.event_count()
    add("/api/events", pages(events, page_size("/api/events")), f"{events:,} events / 1,000, metric included")
    profiles = account.records("profile")
    add("/api/profiles", pages(len(profiles), 100), f"{len(profiles):,} profiles / 100")
    suppressed = sum(1 for p in profiles if _marketing(p).get("suppression"))
    list_suppressed = sum(1 for p in profiles if _marketing(p).get("list_suppressions"))
    add("/api/profiles", pages(suppressed, 100), f"{suppressed} globally suppressed")
    add("/api/profiles", pages(list_suppressed, 100), f"{list_suppressed} suppressed from lists")
    for kind in ("list", "segment"):
        groups = account.records(kind)
        add(f"/api/{kind}s", pages(len(groups), 10), f"{len(groups)} {kind}s / 10")
        member_pages = sum(pages(len(account.members[kind].get(g.id, {})), 100) for g in groups)
        add(f"/api/{kind}s/{{id}}/profiles", member_pages, f"members of each {kind} / 100")
    flows = account.records("flow")
    for archived in (False, True):
        n = sum(1 for f in flows if bool(f.attrs.get("archived")) == archived)
        add("/api/flows", pages(n, 50), f"{n} {'archived ' if archived else ''}flows / 50, actions included")
    sending = [
        a
        for a in account.records("flow-action")
        if (a.attrs.get("definition") or {}).get("type") not in MESSAGELESS_ACTIONS
    ]
    add(
        "/api/flow-actions/{id}/flow-messages",
        sum(pages(len(a.rels.get("flow-messages") or []), 50) for a in sending),
        f"one per action that sends ({len(sending)} of {len(account.records('flow-action'))})",
    )
    campaigns = account.records("campaign")
    partitions = Counter((c.extra["channel"], bool(c.attrs.get("archived"))) for c in campaigns)
    add(
        "/api/campaigns",
        sum(pages(n, 100) for n in partitions.values()) + (6 - len(partitions)),
        "one per channel and archived flag / 100, messages included",
    )
    messages = [m for m in account.records("campaign-message") if m.rels.get("template")]
    add("/api/campaign-messages/{id}/template", len(messages), "one per message with a template (email)")
    add("/api/campaign-recipient-estimations/{id}", len(campaigns), "one per campaign")
    collection("/api/templates", "template")
    collection("/api/images", "image")
    collection("/api/tags", "tag")
    collection("/api/tag-groups", "tag-group")
    collection("/api/coupons", "coupon")
    codes = Counter(str(c.rels.get("coupon")) for c in account.records("coupon-code"))
    add(
        "/api/coupons/{id}/coupon-codes",
        sum(pages(codes.get(c.id, 0), 100) for c in account.records("coupon")),
        "codes of each coupon / 100",
    )
    for path, rtype in (
        ("/api/catalog-items", "catalog-item"),
        ("/api/catalog-variants", "catalog-variant"),
        ("/api/catalog-categories", "catalog-category"),
        ("/api/forms", "form"),
        ("/api/reviews", "review"),
        ("/api/web-feeds", "web-feed"),
        ("/api/push-tokens", "push-token"),
    ):
        collection(path, rtype)
    versions = Counter(str(v.rels.get("form")) for v in account.records("form-version"))
    add(
        "/api/forms/{id}/form-versions",
        sum(pages(versions.get(f.id, 0), 100) for f in account.records("form")),
        "versions of each form / 100",
    )
    days = report_days + 1  # from report_history_days ago through today
    add("/api/campaign-values-reports", days, f"{days} days, one request a day", "POST")
    add("/api/flow-values-reports", days, f"{days} days, one request a day", "POST")
    return out


def floor_table(
    account: AccountData,
    report_days: int,
    latency_s: float,
    scale: float = 1.0,
    planned: dict[str, tuple[int, str]] | None = None,
) -> list[dict[str, Any]]:
    rows = []
    for key, (requests, why) in (planned if planned is not None else plan(account, report_days)).items():
        method, path = key.split(" ", 1)
        burst, steady, _daily = spec.endpoint(path, method.lower()).rate
        burst, steady = scaled(burst, scale), scaled(steady, scale)
        rows.append(
            {
                "endpoint": key,
                "requests": requests,
                "burst": burst,
                "steady": steady,
                "floor": least_time(requests, burst, steady) + latency_s,
                "bucket": bucket_time(requests, burst, steady) + latency_s,
                "why": why,
            }
        )
    return rows


#: The large account of issue 12: 100,000 profiles and 1,000,000 events (the emulator's `large` has 5,000
#: profiles), read from a start_date that leaves 548,000 events.
SIZES.setdefault("large-account", SizeSpec(100_000, 1_000_000, 50, 50, 50, 200, 60, 210, 4))
LARGE_START = datetime(2024, 9, 25, tzinfo=timezone.utc)


def large_plan(account: AccountData, start: datetime) -> dict[str, tuple[int, str]]:
    """Requests the event and profile streams need from `start` (events are spread evenly in time)."""
    store = account.events
    first = bisect.bisect_left(range(store.n), micros(start), key=store.time_of)
    events = account.event_count() - first
    since = start.isoformat()
    profiles = sum(1 for p in account.records("profile") if str(p.attrs.get("updated") or "") >= since[:19])
    return {
        "GET /api/events": (pages(events, 1000), f"{events:,} events / 1,000"),
        "GET /api/profiles": (pages(profiles, 100), f"{profiles:,} profiles updated since {start:%Y-%m-%d} / 100"),
    }


#: The xlarge account of issue 22: 1,000,000 profiles, 10,000,000 events over the default history, 20 lists
#: (the first with a fifth of the profiles, the last empty, the others 1-6 %); profiles and memberships are
#: computed from their index (klaviyo_emulator/lazy.py), so the emulator builds it in seconds.
XLARGE = SizeSpec(1_000_000, 10_000_000, 20, 2, 50, 200, 60, 210, 4, lazy=True)
XLARGE_STREAMS = ("event", "profile", "profile_list")


def xlarge_size(fraction: float) -> str:
    """The xlarge account's size name, scaled by `fraction` (1: the full account) for a quicker run."""
    if fraction == 1:
        SIZES.setdefault("xlarge", XLARGE)
        return "xlarge"
    name = f"xlarge-{fraction:g}"
    profiles, events = int(XLARGE.profiles * fraction), int(XLARGE.events * fraction)
    SIZES.setdefault(name, SizeSpec(profiles, events, *dataclass_values(XLARGE)[2:]))
    return name


def dataclass_values(spec: SizeSpec) -> list[Any]:
    return [getattr(spec, f.name) for f in fields(spec)]


def xlarge_plan(account: AccountData) -> dict[str, tuple[int, str]]:
    """Requests events, profiles and list memberships need on a full first sync."""
    events = account.event_count()
    profiles = len(account.store["profile"])
    groups = account.expected_ids("list")
    members = {g: len(account.members["list"][g]) for g in groups}
    return {
        "GET /api/events": (pages(events, 1000), f"{events:,} events / 1,000"),
        "GET /api/profiles": (pages(profiles, 100), f"{profiles:,} profiles / 100"),
        "GET /api/lists": (pages(len(groups), 10), f"{len(groups)} lists / 10"),
        "GET /api/lists/{id}/profiles": (
            sum(pages(n, 100) for n in members.values()),
            f"{sum(members.values()):,} members of {len(groups)} lists / 100",
        ),
    }


def xlarge_section(say: Report, args: argparse.Namespace, workdir: Path) -> list[list[Any]]:
    """A full first sync of events, profiles and list memberships of the xlarge account at published limits."""
    size = xlarge_size(args.xlarge_fraction)
    built = time.monotonic()
    with emulator(size, args.latency_ms, args.jitter_ms) as emu:
        started = time.monotonic() - built
        account = emu.account
        planned = xlarge_plan(account)
        rows = floor_table(account, 0, args.latency_ms / 1000, planned=planned)
        expected = {
            "event": account.event_count(),
            "profile": len(account.store["profile"]),
            "profile_list": sum(len(account.members["list"][g]) for g in account.expected_ids("list")),
        }
        watch = SpoolWatch(workdir / "xlarge-tmp")
        config = base_config(emu)
        catalog = only_catalog(config, *XLARGE_STREAMS)
        emulator_cpu = time.process_time()  # this process is the emulator's (the tap is a child)
        run = run_tap(emu, config, workdir, "xlarge", catalog=catalog, keep_output=False, spool=watch)
        emulator_cpu = time.process_time() - emulator_cpu
    left = watch.left_behind()
    served = sum(sum(c.values()) for c in run.endpoints.values())
    shape = SIZES[size]
    say(
        f"## 6. The {size} account ({shape.profiles:,} profiles, {shape.events:,} events, {shape.lists} lists), "
        "events, profiles and list memberships, all history"
    )
    say()
    say(
        f"The emulator built the account in {started:.1f} s (profiles and memberships computed from their index) and "
        "served it at Klaviyo's published limits with the latency above; the tap ran with its defaults."
    )
    say()
    run_tables(say, run, rows)
    binding = max(rows, key=lambda r: r["bucket"])
    sliding = max(r["floor"] for r in rows)
    lost = {
        name: (run.streams.get(name, {}).get("records", 0), count)
        for name, count in expected.items()
        if run.streams.get(name, {}).get("records", 0) != count
    }
    minimum = {r["endpoint"]: r["requests"] for r in rows}
    sent = {e: sum(c.values()) for e, c in run.endpoints.items()}
    say(
        f"Wall **{run.wall:.1f} s**; the binding endpoint is `{binding['endpoint']}` ({binding['requests']:,} requests "
        f"at {binding['burst']}/s, {binding['steady']}/min): floor **{binding['bucket']:.1f} s** as a token bucket "
        f"(wall / floor **{over(run.wall, binding['bucket']):.2f}**), {sliding:.1f} s with sliding windows (wall / "
        f"floor {over(run.wall, sliding):.2f}); 429s: {server_429s(run)}; tap CPU {run.cpu:.1f} s; peak RSS "
        f"**{run.rss_mb:.0f} MB**; spool peak on disk **{watch.peak / 1024**2:,.0f} MB**, left in the run's "
        f"TMPDIR after it ended: {', '.join(left) if left else 'nothing'}. The emulator (this process) spent "
        f"{emulator_cpu:.1f} CPU-s on the run's {served:,} requests: **{served / emulator_cpu:,.0f} pages per "
        "CPU-second**."
    )
    say()
    say(
        "Records against the emulator's: "
        + (
            "**all there** (" + ", ".join(f"{name} {count:,}" for name, count in expected.items()) + ")."
            if not lost
            else "MISSING: " + ", ".join(f"{n} {got:,.0f} of {want:,}" for n, (got, want) in lost.items())
        )
        + " Requests against their minimum: "
        + ", ".join(f"`{e}` {sent.get(e, 0):,} / {n:,}" for e, n in minimum.items())
        + "."
    )
    say()
    return [
        [
            f"wall / floor, {size} (events, profiles, memberships)",
            f"{run.wall:.1f} s / {binding['bucket']:.1f} s = {over(run.wall, binding['bucket']):.2f} (token bucket, "
            f"{binding['endpoint']})",
            "<= 1.1",
        ],
        [f"peak RSS, {size}", f"{run.rss_mb:.0f} MB", "< 300 MB"],
        [f"emulator pages per CPU-second, {size}", f"{served / emulator_cpu:,.0f}", ">= 150"],
        [f"spool peak disk, {size}", f"{watch.peak / 1024**2:,.0f} MB; left behind: {len(left)} files", ""],
        [f"records lost, {size}", "none" if not lost else str(lost), "none"],
        [f"429s, {size}", str(server_429s(run)), "0"],
    ]


# -- running the tap -----------------------------------------------------------------------------------


class SpoolWatch:
    """The tap's spool file, seen from outside: the tap creates it unlinked in $TMPDIR (O_TMPFILE on Linux: it
    never has a name), so only its open descriptor shows its size: any descriptor of the process pointing into
    this run's own TMPDIR is the spool. Polled twice a second, the peak is the most it held."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _size(self, pid: int) -> int:
        total = 0
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd).startswith(f"{self.directory}/"):
                        total += fd.stat().st_size
        return total

    def start(self, pid: int) -> None:
        def poll() -> None:
            while not self._stop.wait(0.5):
                self.peak = max(self.peak, self._size(pid))

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def left_behind(self) -> list[str]:
        """What the run left in its temporary directory (nothing, if it cleaned up)."""
        return sorted(p.name for p in self.directory.iterdir())


@dataclass
class Run:
    label: str
    wall: float
    cpu: float
    rss_mb: float
    returncode: int
    streams: dict[str, dict[str, float]]
    endpoints: dict[str, Counter[int]] = field(default_factory=dict)
    stdout: Path | None = None
    stderr_tail: str = ""


def run_tap(
    emu: Emulator,
    config: dict[str, Any],
    workdir: Path,
    label: str,
    *,
    catalog: dict[str, Any] | None = None,
    keep_output: bool = True,
    spool: SpoolWatch | None = None,
    root: Path = ROOT,
) -> Run:
    """The real command line in a subprocess; its own CPU time and peak RSS from wait4 (with `spool`, its
    temporary directory is the watch's, and the spool file's size is polled while it runs; `root`: the checkout
    whose tap runs, `python -m` importing it from there)."""
    config_file = workdir / f"{label}-config.json"
    config_file.write_text(json.dumps(config))
    cmd = [sys.executable, "-m", "tap_klaviyo", "--config", str(config_file)]
    if catalog is not None:
        catalog_file = workdir / f"{label}-catalog.json"
        catalog_file.write_text(json.dumps(catalog))
        cmd += ["--catalog", str(catalog_file)]
    out_path = workdir / f"{label}.jsonl" if keep_output else None
    err_path = workdir / f"{label}.stderr"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_KLAVIYO_")}
    if spool is not None:
        env["TMPDIR"] = str(spool.directory)
    emu.clear_log()
    with (
        out_path.open("wb") if out_path else open(os.devnull, "wb") as out,
        err_path.open("wb") as err,
    ):
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=root, env=env)
        if spool is not None:
            spool.start(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        if spool is not None:
            spool.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = err_path.read_text(encoding="utf-8", errors="replace")
    streams: dict[str, dict[str, float]] = {}
    for match in SUMMARY.finditer(stderr):
        name, *values = match.groups()
        records, requests, retries, throttled, seconds, cpu = (float(v.replace(",", "")) for v in values)
        streams[name] = {
            "records": records,
            "requests": requests,
            "retries": retries,
            "429s": throttled,
            "seconds": seconds,
            "cpu": cpu,
        }
    # The tap's own peak (VmHWM): a child's ru_maxrss counts the memory of the process that spawned it.
    peaks = PEAK.findall(stderr)
    rss_mb = float(peaks[-1]) if peaks else usage.ru_maxrss / 1024
    endpoints: dict[str, Counter[int]] = defaultdict(Counter)
    for entry in emu.requests.snapshot():
        endpoints[f"{entry.method} {entry.template}"][entry.status] += 1
    return Run(
        label,
        wall,
        usage.ru_utime + usage.ru_stime,
        rss_mb,
        proc.returncode,
        streams,
        dict(endpoints),
        out_path,
        stderr[-3000:],
    )


_ACCOUNTS: dict[str, AccountData] = {}


def emulator(size: str, latency_ms: float, jitter_ms: float, scale: float = 1.0) -> Emulator:
    """A fresh server (rate-limit windows from zero) over the same account data for every run of a size: the
    three future-dated events are dated when an account is built."""
    if size not in _ACCOUNTS:
        _ACCOUNTS[size] = AccountData(size, 1)
        _ACCOUNTS[size].precompute()  # a lazy account's profile ids: served from memory, not worked out per page
    config = EmulatorConfig(
        size=size, rate_limit_scale=scale, latency_ms=latency_ms, latency_jitter_ms=jitter_ms, seed=1
    )
    emu = Emulator(config, account=_ACCOUNTS[size])
    emu.api.frozen = True  # the benchmark never changes the account: filter and sort each query once
    return emu


def base_config(emu: Emulator, **extra: Any) -> dict[str, Any]:
    return {"api_key": DEMO_API_KEY, "api_url": emu.base_url, "report_history_days": 1, **extra}


def only_catalog(config: dict[str, Any], *names: str) -> dict[str, Any]:
    from tap_klaviyo.tap import TapKlaviyo

    catalog = TapKlaviyo(config=config, validate_config=False).catalog_dict
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] in names
    return catalog


# -- comparing two runs' records -----------------------------------------------------------------------


def digests(path: Path) -> dict[str, Counter[str]]:
    """Stream -> multiset of record digests (key only for time-dependent streams)."""
    decoder = msgspec.json.Decoder()
    encoder = msgspec.json.Encoder(order="sorted")
    keys: dict[str, list[str]] = {}
    out: dict[str, Counter[str]] = defaultdict(Counter)
    with path.open("rb") as lines:
        for line in lines:
            message = decoder.decode(line)
            kind = message.get("type")
            if kind == "SCHEMA":
                keys[message["stream"]] = list(message.get("key_properties") or [])
            elif kind == "RECORD":
                stream, record = message["stream"], message["record"]
                if stream in TIME_DEPENDENT:
                    body = encoder.encode([record.get(k) for k in keys.get(stream, [])])
                else:
                    body = encoder.encode(record)
                out[stream][hashlib.blake2b(body, digest_size=16).hexdigest()] += 1
    return out


def compare(a: Path, b: Path) -> list[str]:
    """Differences between the records of two runs, per stream (empty: the same)."""
    left, right = digests(a), digests(b)
    problems = []
    for stream in sorted(set(left) | set(right)):
        if left.get(stream) != right.get(stream):
            only_a = sum((left.get(stream, Counter()) - right.get(stream, Counter())).values())
            only_b = sum((right.get(stream, Counter()) - left.get(stream, Counter())).values())
            problems.append(f"{stream}: {only_a} records only in the first run, {only_b} only in the second")
    return problems


# -- report ------------------------------------------------------------------------------------------


def machine() -> str:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = int(meminfo.read_text().split()[1])
        memory = f", {total_kb / 1024 / 1024:.1f} GB RAM"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return (
        f"{os.cpu_count()} CPU cores ({model or platform.processor() or 'unknown CPU'}){memory}, shared with other "
        f"work (load average {load:.1f} at the start); {platform.system()} {platform.release()}, Python "
        f"{platform.python_version()}. The emulator runs in the benchmark process and the tap in its own, so "
        "they share the same cores (the emulator's own pages per CPU-second: `benchmarks/emulator_rate.py`)."
    )


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        self("| " + " | ".join(header) + " |")
        self("|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|")
        for row in rows:
            self("| " + " | ".join(str(c) for c in row) + " |")
        self()


def stream_rows(run: Run) -> list[list[Any]]:
    rows = []
    for name, st in sorted(run.streams.items()):
        if name == "total":
            continue
        rows.append(
            [name, f"{st['records']:,.0f}", f"{st['requests']:,.0f}", f"{st['429s']:,.0f}", f"{st['seconds']:.1f}"]
        )
    total = run.streams.get("total")
    if total:
        rows.append(
            [
                "**total**",
                f"{total['records']:,.0f}",
                f"{total['requests']:,.0f}",
                f"{total['429s']:,.0f}",
                f"{run.wall:.1f}",
            ]
        )
    return rows


def endpoint_table(say: Report, run: Run, floor_rows: list[dict[str, Any]]) -> None:
    say("Per endpoint: requests the run sent (429s as the emulator counted them) and the floor plan:")
    say()
    rows = []
    for row in sorted(floor_rows, key=lambda r: -r["floor"]):
        sent = run.endpoints.get(row["endpoint"], Counter())
        rows.append(
            [
                f"`{row['endpoint']}`",
                f"{sum(sent.values()):,}",
                sent.get(429, 0),
                f"{row['requests']:,}",
                f"{row['burst']}/s, {row['steady']}/min",
                f"{row['floor']:.1f}",
                f"{row['bucket']:.1f}",
                row["why"],
            ]
        )
    for endpoint in sorted(set(run.endpoints) - {r["endpoint"] for r in floor_rows}):
        sent = run.endpoints[endpoint]
        rows.append([f"`{endpoint}`", f"{sum(sent.values()):,}", sent.get(429, 0), "-", "", "", "", "not in the plan"])
    say.table(
        ["endpoint", "sent", "429s", "floor requests", "limits", "floor s (sliding)", "floor s (bucket)", "floor plan"],
        rows,
    )


def run_tables(say: Report, run: Run, floor_rows: list[dict[str, Any]]) -> None:
    """A run's failure (if it failed), its per-stream table and its per-endpoint table against the floor."""
    if run.returncode:
        say(f"The {run.label} run failed (exit {run.returncode}):\n```\n{run.stderr_tail}\n```")
    say.table(["stream", "records", "requests", "429s", "seconds"], stream_rows(run))
    endpoint_table(say, run, floor_rows)


def over(wall: float, floor: float) -> float:
    return wall / floor if floor > 0 else float("nan")


def server_429s(run: Run) -> int:
    return sum(c.get(429, 0) for c in run.endpoints.values())


def batch_section(say: Report, args: argparse.Namespace, workdir: Path) -> list[list[Any]]:
    """Records per CPU-second of the RECORD path and of BATCH files (the SDK's `get_batches`, gzipped JSONL),
    events (the `--size` account) and profiles (the large account), runs alternating within this one run."""
    say("## 7. BATCH files against RECORD messages, zero latency")
    say()
    say(
        "Each stream alone, RECORD then BATCH, `--cpu-runs` times; CPU is the tap process's while the stream "
        "ran (from its summary). BATCH: `batch_config` with gzipped JSONL files on local disk, through "
        "singer-sdk's `get_batches` with the tap's batch encoder (msgspec, zlib level 1: "
        "tap_klaviyo/reading/batch_files.py). Records skip the RECORD message and its serialization; the SDK "
        "still post-processes each one and moves the bookmark per record, and STATE follows each BATCH message."
    )
    say()
    if args.baseline:
        say(
            f"`RECORD, before`: the RECORD path of the tap in `{args.baseline}` (the previous engine), run in turn "
            "with this one against the same emulator."
        )
        say()
    cases = [("event", args.size, {}), ("profile", args.large_size, {"start_date": LARGE_START.isoformat()})]
    rows: list[list[Any]] = []
    summary: list[list[Any]] = []
    modes = ["RECORD", "BATCH", *(["RECORD, before"] if args.baseline else [])]
    for stream, size, extra in cases:
        rates: dict[str, list[float]] = {mode: [] for mode in modes}
        for attempt in range(args.cpu_runs):
            for mode in modes:
                batches = workdir / f"batches-{stream}-{attempt}"
                batches.mkdir(exist_ok=True)
                batch = {
                    "batch_config": {
                        "encoding": {"format": "jsonl", "compression": "gzip"},
                        "storage": {"root": batches.as_uri(), "prefix": f"{stream}-"},
                    }
                }
                with emulator(size, 0.0, 0.0) as emu:
                    config = base_config(emu, **extra, **(batch if mode == "BATCH" else {}))
                    run = run_tap(
                        emu,
                        config,
                        workdir,
                        f"{mode.replace(', ', '-')}-{stream}{attempt}",
                        catalog=only_catalog(config, stream),
                        root=Path(args.baseline) if mode == "RECORD, before" else ROOT,
                    )
                    expected = len(emu.account.expected_ids(stream)) if not extra else None
                if run.returncode:
                    say(f"The {mode} run of {stream} failed (exit {run.returncode}):\n```\n{run.stderr_tail}\n```")
                    return summary
                measured = run.streams.get(stream, {})
                records, cpu = measured.get("records", 0.0), measured.get("cpu", 0.0)
                files = sorted(batches.glob("*.json.gz"))
                if mode == "BATCH":
                    written = sum(batch_rows(f) for f in files)
                    assert written == records, f"{stream}: {written:,} rows in batch files, {records:,.0f} counted"
                if expected is not None:
                    assert records == expected, f"{stream} {mode}: {records:,.0f} records, the account has {expected:,}"
                rate = records / cpu if cpu else float("nan")
                rates[mode].append(rate)
                shown = f"{len(files)}" if mode == "BATCH" else ""
                rows.append(
                    [
                        stream,
                        mode,
                        attempt + 1,
                        f"{records:,.0f}",
                        f"{run.wall:.1f}",
                        f"{cpu:.2f}",
                        f"{rate:,.0f}",
                        shown,
                    ]
                )
                shutil.rmtree(batches)
        record, batch = statistics.median(rates["RECORD"]), statistics.median(rates["BATCH"])
        summary.append(
            [
                f"{stream} records per CPU-second, RECORD / BATCH (median of the runs)",
                f"{record:,.0f} / {batch:,.0f} ({batch / record:.2f}x)",
                "",
            ]
        )
        if args.baseline:
            before = statistics.median(rates["RECORD, before"])
            summary.append(
                [
                    f"{stream} records per CPU-second, RECORD before / after (median of the runs)",
                    f"{before:,.0f} / {record:,.0f} ({record / before:.2f}x)",
                    ">= 60,000" if stream == "event" else ">= 15,000",
                ]
            )
    say.table(["stream", "path", "run", "records", "wall s", "CPU s (stream)", "records / CPU-s", "batch files"], rows)
    return summary


def batch_rows(path: Path) -> int:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return sum(1 for _ in lines)


def section_alone(
    args: argparse.Namespace, number: int, section: Callable[[Report, argparse.Namespace, Path], list[list[Any]]]
) -> list[list[Any]]:
    """One section run alone; it replaces that section of the results file (the other sections stay)."""
    say = Report()
    at, load = datetime.now(timezone.utc), machine()
    with tempfile.TemporaryDirectory(prefix="tap-klaviyo-bench-") as tmp:
        rows = section(say, args, Path(tmp))
    say(f"Run alone ({at:%Y-%m-%d %H:%M} UTC, `python benchmarks/run.py {' '.join(sys.argv[1:])}`). Machine: {load}")
    say()
    say.table(["measure", "result", "target"], rows)
    if args.out != "-":
        path = Path(args.out)
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        block = "\n".join(say.lines) + "\n"
        start = text.find(f"\n## {number}. ")
        end = text.find("\n## ", start + 1) if start >= 0 else -1
        if start >= 0:
            text = text[: start + 1] + block + (text[end + 1 :] if end >= 0 else "")
        else:
            at_summary = text.find("\n## Summary")
            text = text[: at_summary + 1] + block + text[at_summary + 1 :] if at_summary >= 0 else text + block
        path.write_text(text, encoding="utf-8")
        print(f"written to {args.out}")
    return rows


#: Sections that run alone (`--only-xlarge`, `--only-batch`), in the results file's order.
SECTIONS_ALONE: list[tuple[int, str, Callable[[Report, argparse.Namespace, Path], list[list[Any]]]]] = [
    (6, "only_xlarge", xlarge_section),
    (7, "only_batch", batch_section),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="medium", choices=["tiny", "demo", "medium", "large"])
    parser.add_argument(
        "--large-size", default="large-account", choices=["tiny", "demo", "medium", "large", "large-account"]
    )
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--jitter-ms", type=float, default=50.0)
    parser.add_argument("--quick", action="store_true", help="demo account, no large run")
    parser.add_argument("--skip-sequential", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-zero-latency", action="store_true")
    parser.add_argument("--skip-reduced", action="store_true")
    parser.add_argument("--skip-writes", action="store_true", help="no target-klaviyo write case")
    parser.add_argument("--writes-only", action="store_true", help="only the target-klaviyo write case")
    parser.add_argument(
        "--writes-million", action="store_true", help="the write case also with 1,000,000 profiles (peak RSS)"
    )
    parser.add_argument("--reduced-size", default="demo", choices=["tiny", "demo", "medium", "large"])
    parser.add_argument("--reduced-scale", type=float, default=0.2)
    parser.add_argument("--skip-models", action="store_true", help="no warehouse models section")
    parser.add_argument("--only-models", action="store_true", help="only the warehouse models section")
    parser.add_argument("--cpu-runs", type=int, default=3, help="zero-latency event runs (median reported)")
    parser.add_argument("--skip-xlarge", action="store_true", help="no xlarge run (about 15 minutes at the floor)")
    parser.add_argument("--only-xlarge", action="store_true", help="the xlarge run alone")
    parser.add_argument("--only-batch", action="store_true", help="BATCH against RECORD alone (section 7)")
    parser.add_argument("--skip-batch", action="store_true", help="no BATCH against RECORD section")
    parser.add_argument(
        "--baseline",
        default="",
        help="a checkout of the previous engine (e.g. `git worktree add /tmp/before main`): section 7 runs its "
        "RECORD path in turn with this one's",
    )
    parser.add_argument(
        "--xlarge-fraction", type=float, default=1.0, help="scale the xlarge account's profiles and events"
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results.md"))
    args = parser.parse_args()
    if args.quick:
        args.size, args.skip_large, args.skip_xlarge, args.skip_batch = "demo", True, True, True
    if args.only_xlarge or args.only_batch:  # both: one run, each section replaced in the results file
        done = [
            bool(section_alone(args, number, section))
            for number, flag, section in SECTIONS_ALONE
            if getattr(args, flag)
        ]
        return 0 if all(done) else 1

    say = Report()
    started_at = datetime.now(timezone.utc)
    say(f"# tap-klaviyo benchmark ({started_at:%Y-%m-%d %H:%M} UTC)")
    say()
    say(f"Machine: {machine()}")
    say()
    say(
        f"Emulator: `{args.size}` account, Klaviyo's per-endpoint rate limits, {args.latency_ms:.0f} ms +- "
        f"{args.jitter_ms:.0f} ms latency per request; tap settings: defaults (max_concurrency 8), "
        "report_history_days 1. Command: `python benchmarks/run.py`"
        + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
        + "."
    )
    say()
    summary: list[list[Any]] = []

    with tempfile.TemporaryDirectory(prefix="tap-klaviyo-bench-") as tmp:
        workdir = Path(tmp)
        if args.only_models:
            summary += models_section(say, args.size, workdir)
            return finish(say, summary, args.out)
        if args.writes_only:
            write_case.section(
                say, workdir, args.latency_ms, args.jitter_ms, least_time, summary, million=args.writes_million
            )
            return finish(say, summary, args.out)
        # 1. concurrent sync with limits and latency
        with emulator(args.size, args.latency_ms, args.jitter_ms) as emu:
            floor_rows = floor_table(emu.account, 1, args.latency_ms / 1000)
            concurrent = run_tap(emu, base_config(emu), workdir, "concurrent")
        if concurrent.returncode:
            say(f"The concurrent run failed (exit {concurrent.returncode}):\n```\n{concurrent.stderr_tail}\n```")
            return 1
        floor = sum(r["floor"] for r in floor_rows)
        say(f"## 1. Full sync of the {args.size} account, max_concurrency 8")
        say()
        say("Per stream (seconds: from the stream's first request to its last record; streams fetched ahead overlap):")
        say()
        run_tables(say, concurrent, floor_rows)
        ratio = concurrent.wall / floor if floor else float("nan")
        overlap = max(r["floor"] for r in floor_rows)
        say(
            f"Wall **{concurrent.wall:.1f} s**; rate-limit floor **{floor:.1f} s** (sliding window, sum over "
            f"endpoints); wall / floor **{ratio:.2f}** (against the largest endpoint's floor, {overlap:.1f} s, as if "
            f"every stream overlapped: {over(concurrent.wall, overlap):.2f}); 429s: {server_429s(concurrent)}; tap CPU "
            f"{concurrent.cpu:.1f} s; peak RSS {concurrent.rss_mb:.0f} MB."
        )
        say()
        summary += [
            [
                f"wall / rate-limit floor ({args.size})",
                f"{concurrent.wall:.1f} s / {floor:.1f} s = {ratio:.2f}",
                "<= 1.25",
            ],
            ["429s in a normal run", str(server_429s(concurrent)), "0"],
        ]

        # 2. sequential
        if not args.skip_sequential:
            with emulator(args.size, args.latency_ms, args.jitter_ms) as emu:
                sequential = run_tap(emu, base_config(emu, max_concurrency=1), workdir, "sequential")
            assert concurrent.stdout is not None and sequential.stdout is not None
            differences = compare(sequential.stdout, concurrent.stdout)
            speedup = sequential.wall / concurrent.wall
            say("## 2. The same sync with max_concurrency 1")
            say()
            say.table(["stream", "records", "requests", "429s", "seconds"], stream_rows(sequential))
            say(
                f"Sequential wall **{sequential.wall:.1f} s**; concurrent {concurrent.wall:.1f} s: **{speedup:.1f}x** "
                f"faster. Records: "
                + ("**the same** in both runs (keys and contents, per stream)." if not differences else "DIFFERENT:")
            )
            for problem in differences:
                say(f"- {problem}")
            say()
            summary += [
                [
                    "concurrent vs max_concurrency=1",
                    f"{sequential.wall:.1f} s / {concurrent.wall:.1f} s = {speedup:.1f}x",
                    ">= 5x",
                ],
                ["same records as sequential", "yes" if not differences else "NO", "yes"],
            ]

        # 3. events at zero latency
        if not args.skip_zero_latency:
            say("## 3. Events alone at zero latency")
            say()
            say(
                f"{args.cpu_runs} runs (the machine is shared: CPU time per run varies); CPU is the tap process's "
                "(all threads: HTTP, JSON decoding, records, output) while the event stream ran, from the tap's "
                "summary; 'with start-up' adds interpreter start, imports and discovery."
            )
            say()
            rates = []
            cpu_rows = []
            for attempt in range(args.cpu_runs):
                with emulator(args.size, 0.0, 0.0) as emu:
                    config = base_config(emu)
                    catalog = only_catalog(config, "event")
                    fast = run_tap(emu, config, workdir, f"events{attempt}", catalog=catalog, keep_output=False)
                event = fast.streams.get("event", {})
                records = event.get("records", 0.0)
                rate = records / event["cpu"] if event.get("cpu") else float("nan")
                rates.append(rate)
                cpu_rows.append(
                    [
                        attempt + 1,
                        f"{records:,.0f}",
                        f"{fast.wall:.1f}",
                        f"{event.get('cpu', 0):.2f}",
                        f"**{rate:,.0f}**",
                        f"{fast.cpu:.2f}",
                        f"{records / fast.cpu:,.0f}" if fast.cpu else "",
                    ]
                )
            say.table(
                [
                    "run",
                    "event records",
                    "wall s",
                    "CPU s (event stream)",
                    "records / CPU-s",
                    "CPU s with start-up",
                    "records / CPU-s with start-up",
                ],
                cpu_rows,
            )
            median = statistics.median(rates)
            say(f"Median: **{median:,.0f} event records per CPU-second** (range {min(rates):,.0f}-{max(rates):,.0f}).")
            say()
            summary.append(
                [
                    "event records per CPU-second (zero latency)",
                    f"{median:,.0f} (median of {len(rates)}; {min(rates):,.0f}-{max(rates):,.0f})",
                    ">= 40,000",
                ]
            )

            if not args.skip_large:
                with emulator(args.large_size, 0.0, 0.0) as emu:
                    config = base_config(emu, start_date=LARGE_START.isoformat())
                    fast = run_tap(emu, config, workdir, "profiles", catalog=only_catalog(config, "profile"))
                profile = fast.streams.get("profile", {})
                rate = profile.get("records", 0.0) / profile["cpu"] if profile.get("cpu") else float("nan")
                say(
                    f"Profiles alone (large account, from {LARGE_START:%Y-%m-%d}; once): "
                    f"{profile.get('records', 0):,.0f} profile records, {profile.get('cpu', 0):.2f} CPU-s while the "
                    f"stream ran: **{rate:,.0f} profile records per CPU-second** (wall {fast.wall:.1f} s; the "
                    "profile endpoint's limits still apply at zero latency)."
                )
                say()
                summary.append(["profile records per CPU-second (zero latency)", f"{rate:,.0f} (one run)", ">= 40,000"])

        # 4. the large account, events and profiles
        if not args.skip_large:
            with emulator(args.large_size, args.latency_ms, args.jitter_ms) as emu:
                planned = large_plan(emu.account, LARGE_START)
                large_rows = floor_table(emu.account, 0, args.latency_ms / 1000, planned=planned)
                config = base_config(emu, start_date=LARGE_START.isoformat())
                large = run_tap(
                    emu, config, workdir, "large", catalog=only_catalog(config, "event", "profile"), keep_output=False
                )
            shape = SIZES[args.large_size]
            say(
                f"## 4. The {args.large_size} account ({shape.profiles:,} profiles, {shape.events:,} events), events "
                f"and profiles, from {LARGE_START:%Y-%m-%d}"
            )
            say()
            run_tables(say, large, large_rows)
            sliding = max(r["floor"] for r in large_rows)
            bucket = max(r["bucket"] for r in large_rows)
            say(
                f"Wall **{large.wall:.1f} s**; floor (the two streams overlap: the larger endpoint's) "
                f"**{sliding:.1f} s** with sliding windows, {bucket:.1f} s as token buckets; wall / floor "
                f"**{over(large.wall, sliding):.2f}** (sliding) and {over(large.wall, bucket):.2f} (bucket); 429s: "
                f"{server_429s(large)}; tap CPU {large.cpu:.1f} s; peak RSS **{large.rss_mb:.0f} MB**. The tap writes "
                f"records on one thread of one interpreter, so its CPU time is a floor of its own: wall / tap CPU "
                f"**{over(large.wall, large.cpu):.2f}**; the emulator's CPU shares the same two cores."
            )
            say()
            summary += [
                [
                    "wall / floor, large account (events + profiles)",
                    f"{large.wall:.1f} s / {sliding:.1f} s = {over(large.wall, sliding):.2f} (sliding window); "
                    f"{over(large.wall, bucket):.2f} (token bucket, {bucket:.1f} s)",
                    "<= 1.25 (sliding window)",
                ],
                [
                    "wall / tap CPU, large account",
                    f"{large.wall:.1f} s / {large.cpu:.1f} s = {over(large.wall, large.cpu):.2f}",
                    "",
                ],
                ["peak RSS, large account", f"{large.rss_mb:.0f} MB", "< 250 MB"],
            ]

        # 5. an account with a fifth of the published limits
        if not args.skip_reduced:
            scale = args.reduced_scale
            with emulator(args.reduced_size, args.latency_ms, args.jitter_ms, scale=scale) as emu:
                reduced_rows = floor_table(emu.account, 1, args.latency_ms / 1000, scale=scale)
                reduced = run_tap(emu, base_config(emu), workdir, "reduced", keep_output=False)
            sent = sum(sum(c.values()) for c in reduced.endpoints.values())
            throttled = server_429s(reduced)
            share = throttled / sent if sent else float("nan")
            say(f"## 5. Limits at {scale:g} of the published ones ({args.reduced_size} account, full sync)")
            say()
            say(
                "Klaviyo's limits are per account and shared by every app and key on it. The emulator scales every "
                "window (burst, steady, daily) and reports the account's steady limit in RateLimit-Limit, what is "
                "left in RateLimit-Remaining and the seconds to the window's reset in RateLimit-Reset."
            )
            say()
            run_tables(say, reduced, reduced_rows)
            floor_sum = sum(r["floor"] for r in reduced_rows)
            overlap = max(r["floor"] for r in reduced_rows)
            say(
                f"**{throttled} of {sent:,} requests answered 429 ({share:.1%})**; wall {reduced.wall:.1f} s; floor at "
                f"these limits {floor_sum:.1f} s (sliding window, sum over endpoints; wall / floor "
                f"{over(reduced.wall, floor_sum):.2f}), {overlap:.1f} s for the largest endpoint alone."
            )
            say()
            summary.append(
                [f"429s at {scale:g} of the published limits", f"{throttled} of {sent:,} ({share:.1%})", "< 2 %"]
            )

        # 6. the xlarge account
        if not args.skip_xlarge:
            summary += xlarge_section(say, args, workdir)
        if not args.skip_batch:
            summary += batch_section(say, args, workdir)

        if not args.skip_writes:
            write_case.section(
                say, workdir, args.latency_ms, args.jitter_ms, least_time, summary, million=args.writes_million
            )
        if not args.skip_models:
            summary += models_section(say, args.size, workdir)
    return finish(say, summary, args.out)


def models_section(say: Report, size: str, workdir: Path) -> list[list[Any]]:
    """7. The warehouse models' build times on the account loaded into DuckDB."""
    times = time_models(size, workdir)
    say(f"## 7. Warehouse models on the {size} account (DuckDB)")
    say()
    say(
        f"Loaded through Meltano in {times.load:.0f} s ({times.events:,} events); `meltano invoke dbt-duckdb`: "
        f"full build **{times.full_build:.1f} s** ({times.passed}), incremental build with nothing new "
        f"{times.incremental_build:.1f} s, `dbt run` alone {times.run_only:.1f} s (each with dbt's start)."
    )
    say()
    return [[f"models full build, {size} account", f"{times.full_build:.1f} s", ""]]


def finish(say: Report, summary: list[list[Any]], out: str) -> int:
    say("## Summary")
    say()
    say.table(["measure", "result", "target"], summary)
    if out != "-":
        Path(out).write_text("\n".join(say.lines) + "\n", encoding="utf-8")
        print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
