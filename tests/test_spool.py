"""Where requests are dear, a windowed backfill is cut into few long windows, and the windows read ahead of
the one being written put their pages on disk rather than stop: fewer requests, the same records, in order."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from klaviyo_emulator import Emulator, EmulatorConfig
from tap_klaviyo.reading import windows
from tap_klaviyo.reading.spool import Spool
from tap_klaviyo.streams.events import EventStream
from tests.conftest import config_for
from tests.harness import SyncResult, run_tap, select_only


@pytest.fixture(scope="module")
def demo() -> Iterator[Emulator]:
    """20,003 events: 21 pages of 1,000."""
    with Emulator(EmulatorConfig(size="demo", rate_limit_scale=0.0)) as emu:
        yield emu


def event_requests(emu: Emulator) -> int:
    return sum(1 for entry in emu.requests.snapshot() if entry.template == "/api/events")


def sync_events(emu: Emulator, **settings: Any) -> tuple[SyncResult, int]:
    emu.clear_log()
    config = config_for(emu, **settings)
    result = run_tap(config, catalog=select_only(config, {"event"}))
    return result, event_requests(emu)


@pytest.fixture(scope="module")
def one_cursor(demo: Emulator) -> tuple[SyncResult, int]:
    return sync_events(demo, max_concurrency=1)


def test_dear_requests_get_few_long_windows_whose_read_ahead_pages_go_to_disk(
    demo: Emulator, one_cursor: tuple[SyncResult, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Short windows would be a tenth of a page (hundreds of cuts); the endpoint allows 10 requests a minute.
    monkeypatch.setattr(windows, "PAGES_PER_WINDOW", 0.1)
    monkeypatch.setattr(windows, "steady_limit", lambda stream: 10)
    spools: list[Spool] = []
    original = EventStream.post_process
    requests_before_first_record: list[int] = []

    def slow_writer(self: EventStream, row: dict[str, Any], context: Any = None) -> dict[str, Any] | None:
        if not requests_before_first_record:
            spools.append(self.run.spool)
            # The main thread is busy with the first page while the workers fetch every window ahead of it.
            deadline = time.monotonic() + 20
            while event_requests(demo) < one_cursor[1] and time.monotonic() < deadline:
                time.sleep(0.02)
            requests_before_first_record.append(event_requests(demo))
        return original(self, row, context)

    monkeypatch.setattr(EventStream, "post_process", slow_writer)
    result, sent = sync_events(demo, max_concurrency=4)
    sequential, sequential_sent = one_cursor
    # 2 long windows per worker: at most one part-filled page each on top of the one cursor's requests.
    assert sequential_sent < sent <= sequential_sent + 2 * 4
    assert requests_before_first_record[0] >= sequential_sent, "the windows stopped fetching"
    assert spools[0].pages > 0, "nothing was put on disk"
    assert spools[0].closed
    assert [r["id"] for r in result.records["event"]] == [r["id"] for r in sequential.records["event"]]
    assert result.records["event"] == sequential.records["event"]


def test_cheap_requests_keep_short_windows_and_nothing_goes_to_disk(
    demo: Emulator, one_cursor: tuple[SyncResult, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(windows, "PAGES_PER_WINDOW", 0.5)
    spools: list[Spool] = []
    original = EventStream.post_process

    def remember(self: EventStream, row: dict[str, Any], context: Any = None) -> dict[str, Any] | None:
        if not spools:
            spools.append(self.run.spool)
        return original(self, row, context)

    monkeypatch.setattr(EventStream, "post_process", remember)
    result, sent = sync_events(demo, max_concurrency=4)
    sequential, sequential_sent = one_cursor
    assert sent > sequential_sent + 2 * 4, "short windows: many cuts (events are cheap: 3,500 a minute)"
    assert spools[0].pages == 0
    assert result.records["event"] == sequential.records["event"]


def test_a_full_or_refused_spool_keeps_pages_in_memory(tmp_path: Any) -> None:
    spool = Spool(limit=1000, directory=str(tmp_path))
    page = [{"id": str(i), "n": i, "x": None, "f": 1.5, "nested": {"a": [1, "b"]}} for i in range(3)]
    spilled = spool.put(page)
    assert spilled is not None and len(spilled) == 3
    assert list(spilled) == page
    unread = spool.put(page)
    assert unread is not None
    assert spool.put(page * 100) is None  # past the limit
    spool.close()
    assert spool.put(page) is None
    with pytest.raises(RuntimeError, match="closed"):
        list(unread)


def open_spool_files(directory: Any) -> int:
    """The spool's files, seen as the process's open descriptors into `directory` (they have no name)."""
    import os
    from pathlib import Path

    prefix = f"{Path(directory).resolve()}/"
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            count += os.readlink(fd).startswith(prefix)
        except OSError:
            continue
    return count


def test_pages_read_back_give_their_disk_back_so_a_backfill_passes_through_many_times_the_limit(tmp_path: Any) -> None:
    page = [{"id": str(i), "payload": "x" * 200} for i in range(10)]
    measure = Spool(directory=str(tmp_path))
    assert measure.put(page) is not None
    page_bytes = measure.live
    measure.close()
    # Room for 4 pages waiting, segments of 2 pages.
    spool = Spool(limit=4 * page_bytes, directory=str(tmp_path), segment_bytes=2 * page_bytes)
    waiting = [spool.put(page) for _ in range(4)]
    assert all(p is not None for p in waiting)
    assert spool.put(page) is None, "the limit counts what waits on disk"
    assert not spool.usable
    passed = 0
    for _ in range(50):  # 200 pages through a spool that holds 4
        for spilled in waiting:
            assert spilled is not None
            assert list(spilled) == page
            passed += 1
        waiting = [spool.put(page) for _ in range(4)]
        assert all(p is not None for p in waiting), f"no room after {passed} pages were read back"
        assert spool.live <= 4 * page_bytes
        assert open_spool_files(tmp_path) <= 3  # the segments still waiting, never the ones read back
    assert spool.written == 204 * page_bytes and spool.pages == 204
    assert spool.peak == 4 * page_bytes
    spool.close()
    assert open_spool_files(tmp_path) == 0 and spool.live == 0


def test_a_page_is_read_back_once(tmp_path: Any) -> None:
    spool = Spool(directory=str(tmp_path))
    spilled = spool.put([{"id": "1"}])
    assert spilled is not None and spilled.load() == [{"id": "1"}]
    with pytest.raises(RuntimeError, match="twice"):
        spilled.load()
    spool.close()


@pytest.mark.parametrize(
    ("pages", "plan"),
    [
        (10_000, (200, True)),  # the xlarge account's profiles: windows of 50 pages, 16 fetching at once
        (683, (16, True)),  # the large account's: two per worker
        (100, (50, False)),  # less than half a minute of the endpoint: short windows
    ],
)
def test_dear_ranges_are_cut_into_windows_of_about_fifty_pages(pages: int, plan: tuple[int, bool]) -> None:
    from datetime import datetime, timedelta, timezone

    oldest = datetime(2026, 1, 1, tzinfo=timezone.utc)
    lower = oldest + timedelta(minutes=1)  # the first page covered a minute
    stop = lower + timedelta(minutes=pages)
    first_page = [{"updated": oldest.isoformat()}]
    assert windows.window_plan(first_page, "updated", lower, stop, concurrency=8, steady=750) == plan


def test_the_spool_takes_at_most_half_the_free_disk(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    from tap_klaviyo.reading import spool as spool_module

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(100 * 1024**3, 98 * 1024**3, 2 * 1024**3))
    assert Spool(directory=str(tmp_path)).limit == 1024**3
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**15, 0, 10**15))
    assert Spool(directory=str(tmp_path)).limit == spool_module.SPOOL_LIMIT_BYTES
