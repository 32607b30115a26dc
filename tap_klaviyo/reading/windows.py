"""Time windows: a big incremental range read by several cursors at once, records handed back in order.

A Klaviyo cursor cannot be parallelised, but a time range can be cut. The first page (read here) shows how
dense the range is; the rest is cut into windows, each read by the SDK's request path on a worker, drained
strictly in order so the bookmark only moves forward and memory stays flat.

Each window ends on a part-filled page, so every cut costs about half a request. Where requests are cheap
(the range needs less than half of the endpoint's steady minute) windows are short, about `PAGES_PER_WINDOW`
pages, so the window being written never waits on a long chain of pages. Where they are dear (profiles: a
large account's range is more than a minute of the endpoint's limit) windows are long, about
`LONG_WINDOW_PAGES` pages, `LONG_WINDOWS_PER_WORKER` per worker fetch at once in order, and the windows read
ahead of the one being written put their pages on the run's spool (disk) instead of pausing, so every worker
keeps fetching.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from functools import partial
from itertools import chain
from typing import Any

from klaviyo_core.timestamps import parse_utc, utc_iso
from tap_klaviyo.reading.concurrency import ordered
from tap_klaviyo.reading.contracts import PageSource
from tap_klaviyo.reading.query import WINDOW_END, WINDOW_START
from tap_klaviyo.reading.spool import Page

#: Time windows of a windowed stream: sized for about this many pages each, and at most this many.
PAGES_PER_WINDOW = 2
MAX_WINDOWS = 2000
#: Where requests are dear (each cut costs half a request against a tight steady limit): windows of about this
#: many pages (a cut per 50 pages: 1 % more requests), at least `LONG_WINDOWS_PER_WORKER` per worker.
LONG_WINDOW_PAGES = 50
#: Long windows fetching at once, per worker (the others wait their turn, in order).
LONG_WINDOWS_PER_WORKER = 2


def window_plan(
    first_page: list[dict[str, Any]],
    key: str,
    lower: datetime,
    stop: datetime,
    *,
    concurrency: int,
    steady: int | None = None,
) -> tuple[int, bool]:
    """How many windows to cut the rest of the range into, from the first page's density, and whether they
    are long: about `PAGES_PER_WINDOW` pages each while the range needs less than half of one of the
    endpoint's `steady` minutes (densities vary: the estimate is rough), else about `LONG_WINDOW_PAGES` pages
    each and at least `LONG_WINDOWS_PER_WORKER` per worker."""
    oldest = parse_utc(first_page[0].get(key))
    covered = (lower - oldest).total_seconds() if oldest is not None else 0.0
    if covered <= 0:
        return concurrency * 2, False
    expected_pages = max((stop - lower).total_seconds(), 0.0) / covered
    short = max(1, min(MAX_WINDOWS, math.ceil(expected_pages / PAGES_PER_WINDOW)))
    if steady is None or expected_pages + short / 2 <= steady / 2:
        return short, False
    long = max(concurrency * LONG_WINDOWS_PER_WORKER, math.ceil(expected_pages / LONG_WINDOW_PAGES))
    return (long, True) if long < short else (short, False)


def steady_limit(stream: PageSource) -> int:
    """The endpoint's steady limit per minute for this account, as far as the run knows yet."""
    ratio = stream.run.pacer.ratio or 1.0
    return max(1, int(stream.endpoint.rate[1] * ratio))


def windowed_pages(stream: PageSource, context: Mapping[str, Any] | None) -> Iterator[Page]:
    """The first page through one cursor, then the rest of the range in parallel windows, page by page.

    A record that came without its replication key cannot be placed in a window: where windows overlap (the
    first page's last value, a strict filter's second) it would come twice, so such records pass once by id
    (`Unplaced`, shared by the windows).
    """
    key = str(stream.replication_key)
    first_context = stream.query.with_bounds(context)
    pages = stream.request_pages(first_context)
    first = next(pages, None)
    if first is None:
        return
    first_page = first.records
    if not first.has_next or not first_page:
        # Nothing to cut the range at: the SDK's loop goes on to the end (no request when there is no next page).
        yield from (page.records for page in chain([first], pages) if page.records)
        return
    pages.close()  # the next page is read by the windows instead
    last = first_page[-1].get(key)
    lower = parse_utc(last)
    if lower is None:
        # No replication value to cut at: read on with one cursor from the start (re-reads the first page).
        yield from (page.records for page in stream.request_pages(first_context) if page.records)
        return
    run = stream.run
    stop = min(run.started, run.end_date or run.started)
    count, long = window_plan(first_page, key, lower, stop, concurrency=stream.concurrency, steady=steady_limit(stream))
    if count > 1 and stop - lower > timedelta(minutes=count):
        step = (stop - lower) / count
        edges: list[datetime | None] = [lower + step * i for i in range(count)]
    else:
        edges = [lower]
    stream.stats.range = (parse_utc(first_page[0].get(key)) or lower, stop)
    seen_at_last = {r.get("id") for r in first_page if r.get(key) == last}
    unplaced = Unplaced(r.get("id") for r in first_page if r.get(key) is None)
    yield first_page
    base = {k: v for k, v in (context or {}).items() if k not in (WINDOW_START, WINDOW_END)}
    bounds = list(zip(edges, [*edges[1:], None], strict=True))
    producers: list[Callable[[], Iterable[Page]]] = [
        partial(
            window_pages,
            stream,
            {**base, WINDOW_START: utc_iso(lo) if lo else None, WINDOW_END: utc_iso(hi) if hi else None},
            seen_at_last if i == 0 else set(),
            unplaced,
        )
        for i, (lo, hi) in enumerate(bounds)
    ]
    # One page in memory for the window being written. Long windows read ahead put theirs on disk rather than
    # stop fetching; two per worker fetch at once, in order, so the writer follows the fetch and what waits on
    # disk stays a few windows' worth (all at once, each would advance at 1/n of the endpoint's pace, and the
    # writer would wait on the first while the rest piled up on disk).
    spill, ahead = (
        (run.spool.spill, stream.concurrency * LONG_WINDOWS_PER_WORKER) if long else (None, stream.concurrency)
    )
    for chunk in ordered(producers, ahead=ahead, buffer=1, spill=spill, waits=run.waits):
        run.check_aborted()
        yield chunk


def window_pages(stream: PageSource, context: dict[str, Any], already: set[Any], unplaced: Unplaced) -> Iterator[Page]:
    """One window's records a page at a time (on a worker), less what falls below it (a strict filter steps
    back a second), the records tied with the first page's last value that the first page already had, and
    records without a key that another window already passed."""
    key = str(stream.replication_key)
    floor = context.get(WINDOW_START) or ""

    def inside(record: dict[str, Any]) -> bool:
        value = record.get(key)
        if record.get("id") in already:
            return False
        return bool(value >= floor) if value is not None else unplaced.first(record.get("id"))

    for page in stream.request_pages(context):
        kept = [record for record in page.records if inside(record)]
        if kept:
            yield kept


class Unplaced:
    """Ids of the records without a replication key that a windowed read passed (few: real accounts rarely
    send them), shared by its windows' workers."""

    def __init__(self, ids: Iterable[Any] = ()) -> None:
        self.ids = set(ids)
        self.lock = threading.Lock()

    def first(self, record_id: Any) -> bool:
        """True the first time an id comes (and it is remembered), False after."""
        with self.lock:
            if record_id in self.ids:
                return False
            self.ids.add(record_id)
            return True
