"""What one run shares across its streams and threads, created before any thread starts.

The HTTP session (with the pacing transport), the authenticator (one, so a rotating refresh token is never
spent twice), the limiters, the clock, the fetch-ahead budget, the bookmark guard, and the run's lifecycle.

The lifecycle has one owner: the tap, as a context manager (`with TapKlaviyo(...) as tap: tap.sync_all()`),
which the sync command and `--test` open around the SDK's final `sync_all` (it has no begin or end hook):
1. `own()` when the block is entered.
2. `begin()` when the first stream asks for records (the SDK's `get_records`; the catalog's selection is final
   by then, also for `--test`, which selects every stream): progress reporting, early fetches, lean memory
   settings (gc thresholds, malloc arenas).
3. A top-level stream's end is the SDK's `finalize_state_progress_markers` (its workers stop, a full read
   releases its ACTIVATE_VERSION, records without their key are counted).
4. `end()` when the block is left, once, whatever failed inside it (a fetch, `post_process`, a child sync,
   the record writer): summary, workers stopped, spool removed, memory settings given back, output flushed.
A caller that calls `sync_all` without the block (the SDK's own test runner) gets an unowned run: no progress
thread and no memory settings, which only an owner can give back; fetch-ahead workers are daemon threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from klaviyo_core.clock import Clock
from klaviyo_core.errors import KlaviyoAuthError
from klaviyo_core.session import KlaviyoConnection
from tap_klaviyo.reading import progress
from tap_klaviyo.reading.bookmarks import BookmarkGuard
from tap_klaviyo.reading.concurrency import Budget, Waits
from tap_klaviyo.reading.memory import LeanMemory
from tap_klaviyo.reading.progress import Reporter, Stopwatch
from tap_klaviyo.reading.settings import parse_date_setting
from tap_klaviyo.reading.spool import Spool


class RunEnded(Exception):
    """Raised on a worker that would send a request after the sync ended (its records have no taker)."""


class KlaviyoRun:
    """Run-wide resources of one tap instance."""

    def __init__(
        self,
        config: Mapping[str, Any],
        logger: logging.Logger,
        clock: Clock | None = None,
        config_files: tuple[Path, ...] = (),
    ) -> None:
        self.config = config
        self.config_files = config_files
        self.logger = logger
        self.clock = clock or Clock()
        #: Which workers the record writer waits on: their requests go first.
        self.waits = Waits()
        self.started: datetime = self.clock.now().astimezone(timezone.utc)
        self.started_iso = self.started.isoformat()
        #: The one connection (session, pacing, auth, secrets, headers) the target builds the same way.
        self.connection = KlaviyoConnection(
            config,
            logger,
            product="tap-klaviyo",
            clock=self.clock,
            config_files=config_files,
            check_aborted=self.check_aborted,
            urgent=self.waits.urgent,
        )
        self.secrets = self.connection.secrets
        self.end_date = parse_date_setting(config, "end_date") if config.get("end_date") else None
        self.end_date_iso = self.end_date.astimezone(timezone.utc).isoformat() if self.end_date else None
        self.abort_error: BaseException | None = None
        self.pacer = self.connection.pacer
        self.budget = Budget()
        self.backfill_budget = Budget()  # issue 12 (learnpace): big streams fetched ahead (fanout.Fanout.big)
        self.spool = Spool()  # pages fetched ahead past the budgets
        self.bookmarks = BookmarkGuard(self.started_iso)
        self.stopwatch = Stopwatch()
        self.streams: Sequence[Any] = ()
        self.on_end: Callable[[], None] | None = None
        #: Inside its owner's block (the tap as a context manager): the end is certain to come.
        self.owned = False
        self.began = False
        self.reporter: Reporter | None = None
        self.memory = LeanMemory()
        self.ended = False
        self.lock = threading.Lock()
        #: What one stream found that the run's other streams reuse (`once`), by what it is.
        self.found_once: dict[str, Any] = {}
        self.finding = threading.Lock()

    # -- the run's beginning and end -----------------------------------------------------------------

    def own(self) -> None:
        """The owner's block is entered: `end` will run when it is left."""
        self.owned = True

    def begin(self) -> None:
        """The first stream asks for records: progress reporting starts, slow streams start fetching."""
        if self.began:
            return
        self.began = True
        active = [s for s in self.streams if s.selected or s.has_selected_descendents]
        if self.owned:  # what only `end` undoes starts only when `end` is certain
            self.memory.start()
            self.reporter = Reporter(active, self.logger, progress.PROGRESS_INTERVAL_S)
            self.reporter.start()
        started = sorted(s.name for s in active if s.parent_stream_type is None and s.fanout.start_early())
        if started:
            self.logger.info("fetching ahead (tight rate limits): %s", ", ".join(started))

    def end(self, failure: BaseException | None = None) -> None:
        """Once, when the owner's block is left: the sync completed, or `failure` ended it. A refused credential
        has nothing to sum up: its one error line stands alone."""
        if self.ended:
            return
        self.ended = True
        for stream in self.streams:
            stream.fanout.close()
        self.abort(RunEnded("the sync has ended"))  # workers still fetching for nobody stop at their next request
        self.spool.close()
        if self.reporter is not None:
            self.reporter.stop()
            if not isinstance(failure, KlaviyoAuthError):
                self.reporter.summary()
            self.reporter = None
        self.memory.stop()
        if self.on_end is not None:
            self.on_end()

    def once(self, what: str, find: Callable[[], Any]) -> Any:
        """`find()` the first time a stream asks for `what` in this run; the same answer after that."""
        with self.finding:
            if what not in self.found_once:
                self.found_once[what] = find()
            return self.found_once[what]

    # -- ending the run early --------------------------------------------------------------------------

    def abort(self, exc: BaseException) -> None:
        """An error on a background fetch that ends the run; every thread raises it at its next request."""
        with self.lock:
            if self.abort_error is None:
                self.abort_error = exc

    def check_aborted(self) -> None:
        if self.abort_error is not None:
            raise self.abort_error
