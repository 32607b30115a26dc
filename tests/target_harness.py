"""Run target-klaviyo the way a user does (Singer messages in, STATE out), in this process."""

from __future__ import annotations

import io
import json
import logging
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from singer_sdk.exceptions import FatalAPIError

from klaviyo_core.clock import Clock
from klaviyo_core.errors import KlaviyoUserError
from target_klaviyo.target import TargetKlaviyo
from tests.fake_clock import backoff_on

LIST_MEMBER_SCHEMA = {
    "type": "object",
    "properties": {
        name: {"type": ["string", "null"]}
        for name in ("list_id", "list_name", "profile_id", "email", "phone_number", "external_id", "_sdc_deleted_at")
    },
}


@dataclass
class TargetResult:
    states: list[dict[str, Any]]
    stderr: str
    error: str | None
    rejects: list[dict[str, Any]] = field(default_factory=list)
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    requests: int = 0
    summary: list[str] = field(default_factory=list)


def messages(stream: str, schema: dict[str, Any], rows: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """A stream's SCHEMA and RECORD messages."""
    out: list[dict[str, Any]] = [{"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": keys}]
    out.extend({"type": "RECORD", "stream": stream, "record": row} for row in rows)
    return out


def run_target(
    config: dict[str, Any],
    lines: list[dict[str, Any]] | str,
    clock: Clock | None = None,
    tmp: Path | None = None,
    stdout: io.StringIO | None = None,
) -> TargetResult:
    """One run; a user error (rejects over the allowance, an unknown stream) is returned, not raised.
    `stdout`: where the STATE lines go (a test's own, to watch them as they are written)."""
    text = lines if isinstance(lines, str) else "".join(json.dumps(m, default=str) + "\n" for m in lines)
    if tmp is not None and "rejects_file" not in config:
        config = {**config, "rejects_file": str(tmp / "rejects.jsonl")}
    out, err = stdout or io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    root = logging.getLogger()
    root.addHandler(handler)
    error = None
    target = None
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                target = TargetKlaviyo(config=config, clock=clock)
                with backoff_on(clock):
                    target.listen(io.StringIO(text))
            except (KlaviyoUserError, FatalAPIError) as exc:
                error = str(exc)
    finally:
        root.removeHandler(handler)
    states = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]  # targets print the value
    rejects: list[dict[str, Any]] = []
    path = config.get("rejects_file")
    if path and Path(path).exists():
        rejects = [json.loads(line) for line in Path(path).read_text().splitlines()]
    result = TargetResult(states, err.getvalue(), error, rejects)
    if target is not None:
        result.outcomes = {k: dict(v) for k, v in target.outcomes.counts.items()}
        result.requests = target.client.requests
        result.summary = target.outcomes.summary(bool(config.get("dry_run")))
    return result
