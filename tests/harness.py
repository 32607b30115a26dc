"""Run the tap the way a user does, against the emulator, and collect what it prints."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections import defaultdict
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from klaviyo_core.clock import Clock
from tap_klaviyo.tap import TapKlaviyo
from tests.fake_clock import backoff_on

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class SyncResult:
    """Singer messages of one run, grouped the way tests look at them."""

    messages: list[dict[str, Any]]
    stderr: str
    stdout: str
    records: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    key_properties: dict[str, list[str]] = field(default_factory=dict)
    states: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def parse(cls, stdout: str, stderr: str) -> SyncResult:
        messages = [json.loads(line) for line in stdout.splitlines() if line.strip()]
        result = cls(messages=messages, stderr=stderr, stdout=stdout)
        for message in messages:
            kind = message["type"]
            if kind == "RECORD":
                result.records[message["stream"]].append(message["record"])
            elif kind == "SCHEMA":
                result.schemas[message["stream"]] = message["schema"]
                result.key_properties[message["stream"]] = message["key_properties"]
            elif kind == "STATE":
                result.states.append(message["value"])
        return result

    @property
    def state(self) -> dict[str, Any]:
        return self.states[-1] if self.states else {}

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in sorted(self.records.items())}


def run_tap(
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
    clock: Clock | None = None,
) -> SyncResult:
    """One sync in this process (fast), stdout and stderr captured; `clock`: the tap's time (a FakeClock)."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.StringIO()
    # The SDK's log handlers keep the stderr they were created with: listen on the root logger too.
    handler = logging.StreamHandler(err)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with (
            redirect_stdout(out),
            redirect_stderr(err),
            TapKlaviyo(config=config, state=state, catalog=catalog, clock=clock) as tap,
            backoff_on(clock),
        ):
            tap.sync_all()
    finally:
        root.removeHandler(handler)
    out.seek(0)
    return SyncResult.parse(out.read(), err.getvalue())


def select_only(config: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """A catalog that selects just `names` (and what they need to run)."""
    tap = TapKlaviyo(config=config, validate_config=False)
    catalog = tap.catalog_dict
    for entry in catalog["streams"]:
        chosen = entry["tap_stream_id"] in names
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = chosen
    return catalog


#: The SDK's console format for an INFO record: a run's normal chatter, never its error.
INFO_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \| INFO +\|")


def lines_besides_info(stderr: str) -> list[str]:
    """What a command said on stderr besides its INFO records: for a run refused by a problem the user must
    fix, exactly one ERROR line."""
    return [line for line in stderr.splitlines() if line.strip() and not INFO_RECORD.match(line)]


def run_cli(
    args: list[str],
    config: dict[str, Any] | None,
    tmp_path: Path,
    *,
    state: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    command: str | None = None,
    stdin: str | None = None,
    waits: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """The real command line in a subprocess: exit codes and exactly what a user would see. `command`: an
    installed console script (`tap-klaviyo`, `target-klaviyo`) instead of `python -m tap_klaviyo`. `waits`:
    the retries wait on a fake clock (tests/fake_time_run.py), and this file gets the seconds they chose."""
    cmd = [str(Path(sys.executable).parent / command)] if command else [sys.executable, "-m", "tap_klaviyo"]
    if waits is not None:
        assert command is None, "fake time runs `python -m tap_klaviyo`"
        cmd[2:2] = ["tests.fake_time_run"]
        env = {**(env or {}), "FAKE_CLOCK_WAITS": str(waits)}
    cmd += args
    if config is not None:
        config_file = tmp_path / "config.json"
        config_file.write_text(json.dumps(config))
        cmd += ["--config", str(config_file)]
    if state is not None:
        state_file = tmp_path / "state.json"
        state_file.write_text(json.dumps(state))
        cmd += ["--state", str(state_file)]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_KLAVIYO_")}
    full_env.update(env or {})
    return subprocess.run(
        cmd, input=stdin, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ROOT, check=False
    )


# Stream -> the emulator's resource type whose ids the stream must emit, all of them.
ID_STREAMS = {
    "account": "account",
    "metric": "metric",
    "event": "event",
    "profile": "profile",
    "list": "list",
    "segment": "segment",
    "flow": "flow",
    "flow_action": "flow-action",
    "flow_messages": "flow-message",
    "campaign": "campaign",
    "campaign_messages": "campaign-message",
    "template": "template",
}


def membership_rows(account: Any, resource: str) -> set[tuple[str, str]]:
    """Every (group, profile) pair the account holds for lists or segments."""
    rows: set[tuple[str, str]] = set()
    for group_id in account.expected_ids(resource):
        members = account.list_members(group_id) if resource == "list" else account.segment_members(group_id)
        rows |= {(group_id, profile_id) for profile_id in members}
    return rows


def missing_records(account: Any, records: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """How many records of each core stream the account holds that `records` lacks (empty: complete)."""
    missing: dict[str, int] = {}
    for stream, resource in ID_STREAMS.items():
        lacking = account.expected_ids(resource) - {r["id"] for r in records.get(stream, [])}
        if lacking:
            missing[stream] = len(lacking)
    for stream, key, resource in (("profile_list", "list_id", "list"), ("profile_segment", "segment_id", "segment")):
        got = {(r[key], r["profile_id"]) for r in records.get(stream, [])}
        lacking_rows = membership_rows(account, resource) - got
        if lacking_rows:
            missing[stream] = len(lacking_rows)
    return missing
