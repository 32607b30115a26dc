"""Where a stream's records come from: fetched ahead on a worker, read in time windows, or read here.

The SDK syncs one stream, partition and child context after another on the main thread. Waiting for each in
turn wastes the rate limits of every other endpoint, so partitions and children are announced as soon as they
are known, and workers run the SDK's own request path (`request_records`) for them. The main thread claims
their records in the order the SDK asks; it alone post-processes records and writes messages and state.
Children that arrive in the parent's `included` (sideloads) or inside its records (derived rows) are kept
here for the child stream to take.

Some streams start at the run's beginning, before the SDK reaches them: those held back by a tight limit
(their waits then overlap everything synced before them), and the big backfills (events, profiles,
memberships), each under its own endpoint's limit, so a steady window that bounds a big stream starts with the
run rather than when the streams before it are done. What they fetch before their turn is bounded by the
run's backfill `Budget`: they pause when it is spent and go on when the main thread claims them. The slow
streams have a budget of their own, so a spent backfill budget never delays their paced requests.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Iterator, Mapping
from functools import partial
from typing import Any, cast

import msgspec

from klaviyo_core.documents import id_text, linkages
from klaviyo_core.pacing import TIGHT_STEADY_LIMIT
from tap_klaviyo.reading.concurrency import Prefetch
from tap_klaviyo.reading.contracts import PageSource
from tap_klaviyo.reading.spool import Page
from tap_klaviyo.reading.windows import windowed_pages


def context_key(context: Mapping[str, Any] | None) -> Hashable:
    return tuple(sorted((context or {}).items()))


class Fanout:
    """One stream's prefetch jobs, its children's buffered rows, and the choice of how to read a context."""

    def __init__(self, stream: PageSource) -> None:
        self.stream = stream
        # Backfills fill their own share of the budget: a spent one never holds back a slow stream's requests.
        budget = stream.run.backfill_budget if self.big else stream.run.budget
        # Past their budget, backfills put pages on disk: their endpoint's steady window keeps being used.
        spool = stream.run.spool
        spill = spool.spill if self.big else None
        self.prefetch: Prefetch[Page] = Prefetch(
            stream.concurrency,
            budget=budget,
            spill=spill,
            spill_has_room=lambda: spool.usable,
            waits=stream.run.waits,
        )
        self.announced = False
        #: child stream name -> parent id -> rows (sideloaded resources, or rows derived from the record).
        self.buffered: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.lock = threading.Lock()

    # -- reading ----------------------------------------------------------------------------------------

    def records(self, context: Mapping[str, Any] | None) -> Iterator[dict[str, Any]]:
        """Main thread: this context's records, claimed from a worker or read now."""
        stream = self.stream
        if context and not self.announced and stream.partitions:
            self.announced = True
            self.announce(stream.partitions)
        claimed = self.prefetch.claim(context_key(context))
        if claimed is not None:
            for chunk in claimed:
                stream.run.check_aborted()
                yield from chunk
            return
        yield from self.read(context)

    def read(self, context: Mapping[str, Any] | None) -> Iterator[dict[str, Any]]:
        """The SDK's request path for a context (windows in parallel for windowed streams)."""
        for page in self.read_pages(context):
            yield from page

    def read_pages(self, context: Mapping[str, Any] | None) -> Iterator[Page]:
        """The context's pages: the stream's page source, or its windows in parallel."""
        if self.windows:
            return windowed_pages(self.stream, context)
        pages = self.stream.request_pages(dict(context) if context is not None else None)
        return (page.records for page in pages if page.records)

    @property
    def windows(self) -> bool:
        stream = self.stream
        return stream.windowed and stream.concurrency > 1 and bool(stream.replication_key)

    # -- fetching ahead -----------------------------------------------------------------------------------

    def announce(self, contexts: Iterable[Mapping[str, Any] | None], *, worker: bool = False) -> None:
        """Start fetching these contexts, at most `concurrency` at once. A stream whose query reads the state
        is announced from the main thread only, which reads its bounds into the context first."""
        stream = self.stream
        if stream.concurrency <= 1 or stream.denied or (worker and stream.replication_key):
            return
        for context in contexts:
            frozen = dict(context) if context is not None else None
            key = context_key(frozen)
            if (frozen is not None and not stream.wants(frozen)) or self.prefetch.announced(key):
                continue
            job_context = stream.query.with_bounds(frozen) if stream.replication_key else frozen
            self.prefetch.announce(key, partial(self.fetch_ahead, job_context))

    def fetch_ahead(self, context: dict[str, Any] | None) -> Iterator[Page]:
        """A worker's job; an error that will end the run ends it now, not when the main thread gets here."""
        try:
            for page in self.read_pages(context):
                yield Chunk(page) if isinstance(page, list) else page
        except Exception as exc:
            if not self.stream.tolerance.tolerates(exc):
                self.stream.run.abort(exc)
            raise

    def start_early(self) -> bool:
        """Begin this stream's requests at the start of the run, before the SDK reaches it: streams held back
        by a tight rate limit, whose waits then overlap the streams synced before them, and big backfills."""
        stream = self.stream
        if stream.concurrency <= 1 or stream.denied or stream.parent_stream_type is not None:
            return False
        if not (self.slow or self.big):
            return False
        self.announced = True
        partitions = stream.partitions
        self.announce(partitions if partitions else [None])
        return True

    @property
    def slow(self) -> bool:
        """This stream, or a selected descendant, requests an endpoint with a tight steady limit."""
        stream = self.stream
        if stream.method != "get":
            return False
        if not stream.arrives_with_parent and stream.endpoint.rate[1] <= TIGHT_STEADY_LIMIT:
            return True
        return any(c.fanout.slow for c in self.active_children())

    @property
    def big(self) -> bool:
        """A backfill of many requests: a windowed range (events, profiles) or a listing's partitions
        (memberships), whose steady window should start with the run."""
        stream = self.stream
        top = stream.parent_stream_type is None
        return top and stream.method == "get" and (stream.windowed or "{" in stream.path)

    def active_children(self) -> list[PageSource]:
        return [
            cast("PageSource", c)
            for c in self.stream.child_streams
            if hasattr(c, "fanout") and (c.selected or c.has_selected_descendents)
        ]

    # -- children --------------------------------------------------------------------------------------

    def page_arrived(self, data: list[Any], included: list[Any] | None, records: list[dict[str, Any]]) -> None:
        """Any thread: set aside what sideloaded children emit, and start fetching the other children."""
        stream = self.stream
        worker = threading.current_thread() is not threading.main_thread()
        for child in self.active_children():
            if child.derived_from_parent:
                continue
            if child.arrives_with_parent:
                found = self.linked(data, included or [], child)
                with self.lock:
                    self.buffered.setdefault(child.name, {}).update(found)
                if stream.concurrency > 1:
                    child.fanout.page_arrived([], None, [r for rows in found.values() for r in rows])
                continue
            if stream.concurrency > 1:
                contexts = [child_context(stream, r) for r in records]
                child.fanout.announce([c for c in contexts if c], worker=worker)

    def linked(self, data: list[Any], included: list[Any], child: PageSource) -> dict[str, list[dict[str, Any]]]:
        """Parent id -> the included resources (as the child's records) its relationship lists (JSON:API)."""
        rels = [rel for rel, name in self.stream.sideloads.items() if name == child.name]
        by_key = {(r.get("type"), id_text(r.get("id"))): r for r in included if hasattr(r, "get")}
        out: dict[str, list[dict[str, Any]]] = {}
        for parent in data:
            parent_id = id_text(parent.get("id"))
            relationships = parent.get("relationships")
            if parent_id is None or not hasattr(relationships, "get"):
                continue
            for rel in rels:
                relationship = relationships.get(rel)
                linkage = linkages(relationship.get("data") if hasattr(relationship, "get") else None)
                found = [by_key[ref] for ref in linkage if ref in by_key]
                if found:  # parents without any are not kept (most events have no attributions)
                    out[parent_id] = [child.shape(r) for r in found]
        return out

    def derive(self, record: dict[str, Any]) -> None:
        """Main thread: rows that derived children take out of this record."""
        for child in self.derived_children:
            self.buffered.setdefault(child.name, {})[str(record.get("id"))] = cast(Any, child).derive(record)

    @property
    def derived_children(self) -> list[PageSource]:
        cached: list[PageSource] | None = getattr(self, "_derived", None)
        if cached is None:
            cached = [c for c in self.active_children() if c.derived_from_parent]
            self._derived = cached
        return cached

    def holds(self, child: str, parent_id: str) -> bool:
        """Rows are set aside for this parent (a child sync would emit some). Once per parent record: no lock,
        a dict lookup is atomic."""
        rows = self.buffered.get(child)
        return rows is not None and parent_id in rows

    def take(self, child: str, parent_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return self.buffered.get(child, {}).pop(parent_id, [])

    def close(self) -> None:
        """The stream is done: drop fetched records nobody will claim (children of records not emitted)."""
        self.prefetch.close()
        for child in self.stream.child_streams:
            fanout = getattr(child, "fanout", None)
            if fanout is not None:
                fanout.close()


class Chunk(list[dict[str, Any]]):
    """Records handed from a worker to the main thread, with about how many bytes of JSON they came from (what
    the run's `Budget` counts): the first record's encoded size times their number."""

    size: int

    def __init__(self, records: list[dict[str, Any]]) -> None:
        super().__init__(records)
        try:
            one = len(msgspec.json.encode(records[0])) if records else 0
        except (TypeError, msgspec.EncodeError):
            one = 1024
        self.size = one * len(records)


def child_context(stream: PageSource, record: dict[str, Any]) -> dict[str, Any] | None:
    """The context the SDK will give the child for this (not yet post-processed) record."""
    context = stream.get_child_context(record, None)
    return dict(context) if context else None
