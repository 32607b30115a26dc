"""BATCH files (`batch_config`): the same rows as the RECORD path, and the bookmark never ahead of the files."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pytest
from singer_sdk.contrib.batch_encoder_jsonl import JSONLinesBatcher
from singer_sdk.helpers._batch import BatchConfig

from klaviyo_emulator import Emulator
from tap_klaviyo.reading.batch_files import FastJsonLinesBatcher, fast_encoder_installed
from tests.conftest import config_for
from tests.harness import SyncResult, run_tap, select_only

STREAMS = {"event", "profile", "list", "profile_list"}


def batch_config(root: Path, size: int = 10_000) -> dict[str, Any]:
    return {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": root.as_uri(), "prefix": "klaviyo-"},
        "batch_size": size,
    }


def rows_of(url: str) -> list[dict[str, Any]]:
    with gzip.open(url2pathname(urlsplit(url).path), "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def batched(result: SyncResult) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for message in result.messages:
        if message["type"] == "BATCH":
            assert message["encoding"] == {"format": "jsonl", "compression": "gzip"}
            for url in message["manifest"]:
                out.setdefault(message["stream"], []).extend(rows_of(url))
    return out


def canonical(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True) for row in rows)


def test_batch_files_hold_exactly_the_records_of_the_record_path(fresh_emulator: Emulator, tmp_path: Path) -> None:
    assert fast_encoder_installed(), "the tap's batch encoder has no entry point: reinstall (pip install -e .)"
    config = config_for(fresh_emulator)
    catalog = select_only(config, STREAMS)
    records = run_tap(config, catalog=catalog)
    batches = run_tap({**config, "batch_config": batch_config(tmp_path)}, catalog=catalog)
    assert not any(m["type"] == "RECORD" for m in batches.messages)
    files = batched(batches)
    assert set(files) == {s for s in STREAMS if records.records.get(s)}
    for stream in files:
        assert canonical(files[stream]) == canonical(records.records[stream]), stream
    assert files["event"] and len(files["event"]) == len(fresh_emulator.account.expected_ids("event"))
    assert set(batches.state["bookmarks"]) == set(records.state["bookmarks"])


def test_the_bookmark_moves_only_past_records_in_announced_files(fresh_emulator: Emulator, tmp_path: Path) -> None:
    """State follows each BATCH message and covers no record that is not in a file announced before it."""
    config = {**config_for(fresh_emulator), "batch_config": batch_config(tmp_path, size=1_000)}
    before = datetime.now(timezone.utc).isoformat()
    result = run_tap(config, catalog=select_only(config, {"event"}))
    announced: list[str] = []
    moves = 0
    for message in result.messages:
        if message["type"] == "BATCH":
            announced.extend(row["datetime"] for url in message["manifest"] for row in rows_of(url))
        elif message["type"] == "STATE":
            bookmark = message["value"].get("bookmarks", {}).get("event", {}).get("replication_key_value")
            if bookmark is not None:
                moves += 1
                assert announced and bookmark <= max(announced), (bookmark, len(announced))
    batches = sum(1 for m in result.messages if m["type"] == "BATCH")
    assert batches == -(-len(fresh_emulator.account.expected_ids("event")) // 1_000)
    assert moves >= batches
    # The last file's newest event, or the run's start where the account holds events dated later.
    final = result.state["bookmarks"]["event"]["replication_key_value"]
    newest = max(announced)
    assert final == newest if newest < before else before <= final <= newest, (final, newest)


@pytest.mark.parametrize("size", [1, 3, 1000])
def test_the_fast_encoder_writes_what_the_sdks_own_writes(tmp_path: Path, size: int) -> None:
    """Same rows, same number of files, same names but for the run's id (a target cannot tell them apart)."""
    rows = [
        {
            "id": str(n),
            "value": n / 3,
            "big": 10**20,
            "text": 'naïve \u2028 "quoted"',
            "none": None,
            "nested": {"a": [1]},
        }
        for n in range(7)
    ]
    manifests = {}
    for name, batcher_type in (("sdk", JSONLinesBatcher), ("fast", FastJsonLinesBatcher)):
        config = BatchConfig.from_dict(batch_config(tmp_path / name, size))
        batcher = batcher_type("tap-klaviyo", "event", config)
        manifests[name] = [url for manifest in batcher.get_batches(iter(rows)) for url in manifest]
    assert len(manifests["sdk"]) == len(manifests["fast"]) == -(-len(rows) // size)
    for sdk, fast in zip(manifests["sdk"], manifests["fast"], strict=True):
        assert rows_of(fast) == rows_of(sdk)
        assert fast.rsplit("-", 1)[1] == sdk.rsplit("-", 1)[1] and fast.endswith(".json.gz")
