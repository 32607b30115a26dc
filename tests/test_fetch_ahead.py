"""Big streams (events, profiles, memberships) start at the run's beginning, and what they fetch before
their turn stays within the run's budget."""

from __future__ import annotations

import io
import time
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

import pytest

from klaviyo_emulator import Emulator
from tap_klaviyo.streams.events import EventStream
from tap_klaviyo.tap import TapKlaviyo
from tests.conftest import config_for
from tests.harness import SyncResult, missing_records, select_only

STREAMS = {"event", "profile", "list", "profile_list"}


def requests_to(emu: Emulator, template: str) -> int:
    return sum(1 for entry in emu.requests.snapshot() if entry.template == template)


def pages_served(emu: Emulator, template: str) -> int:
    """Pages answered (a request answered 429 and retried is one page, not two)."""
    return sum(1 for entry in emu.requests.snapshot() if entry.template == template and entry.status == 200)


def wait_for(condition: Any, seconds: float = 20.0) -> bool:
    """Real time, bounded: a worker's request is the event waited for, not a duration."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def profile_pages(emu: Emulator) -> int:
    """Requests a profile sync from the start of time needs (page size 100)."""
    return -(-len(emu.account.expected_ids("profile")) // 100)


@pytest.mark.parametrize("spool", [True, False], ids=["spooled to disk", "no spool: paused"])
def test_profiles_and_memberships_are_fetched_while_events_are_emitted_within_the_budget(
    fresh_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, spool: bool
) -> None:
    emu = fresh_emulator
    config = config_for(emu, max_concurrency=8)
    seen: dict[str, Any] = {}
    original = EventStream.post_process
    pages = profile_pages(emu)
    assert pages >= 2

    def first_event(self: EventStream, row: dict[str, Any], context: Any = None) -> dict[str, Any] | None:
        if not seen:
            # The SDK syncs `event` first; the profile and membership backfills have started meanwhile ...
            seen["profiles started"] = wait_for(lambda: requests_to(emu, "/api/profiles") >= 1)
            seen["members started"] = wait_for(lambda: requests_to(emu, "/api/lists/{id}/profiles") >= 1)
            if spool:
                # ... and past the budget their pages go to disk: every profile page arrives before any event
                # is written.
                seen["all profiles"] = wait_for(lambda: requests_to(emu, "/api/profiles") >= pages)
            else:
                # ... and stop once the budget is spent (a page each here): an unbounded prefetch would go on.
                time.sleep(0.5)
            seen["profile pages"] = pages_served(emu, "/api/profiles")
        return original(self, row, context)

    monkeypatch.setattr(EventStream, "post_process", first_event)
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.StringIO()
    with (
        redirect_stdout(out),
        redirect_stderr(err),
        TapKlaviyo(config=config, catalog=select_only(config, STREAMS)) as tap,
    ):
        tap.run.backfill_budget.limit = 1  # any page spends it
        if not spool:
            tap.run.spool.limit = 0
        run_spool = tap.run.spool
        tap.sync_all()
    out.seek(0)
    result = SyncResult.parse(out.read(), err.getvalue())
    assert seen["profiles started"] and seen["members started"]
    if spool:
        assert seen["all profiles"], seen
        assert run_spool.pages >= pages - 1  # all but the page the budget took
        assert run_spool.closed  # the run's end removes the file
    else:
        assert seen["profile pages"] == 1  # the first page, then paused until the SDK reached profiles
        assert run_spool.pages == 0
    missing = missing_records(emu.account, result.records)
    assert {stream: n for stream, n in missing.items() if stream in STREAMS} == {}
