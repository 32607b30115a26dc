"""What the tap's machinery needs of a stream and of the run, as Protocols.

Windows, fetch-ahead and progress reporting work on any object with these members (KlaviyoStream is one),
so they import nothing of the stream module, and the stream imports them: imports point one way.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from klaviyo_core.pacing import Pacer
from klaviyo_core.spec import Endpoint
from tap_klaviyo.reading.concurrency import Budget, Waits
from tap_klaviyo.reading.pagination import ApiPage
from tap_klaviyo.reading.progress import RunStats
from tap_klaviyo.reading.query import Query
from tap_klaviyo.reading.spool import Spool
from tap_klaviyo.reading.tolerance import Tolerance


class RunResources(Protocol):
    """The run's shared pieces that fetch-ahead and windows use."""

    @property
    def started(self) -> datetime: ...

    @property
    def end_date(self) -> datetime | None: ...

    @property
    def pacer(self) -> Pacer: ...

    @property
    def budget(self) -> Budget: ...

    @property
    def backfill_budget(self) -> Budget: ...

    @property
    def spool(self) -> Spool: ...

    @property
    def waits(self) -> Waits: ...

    def check_aborted(self) -> None: ...

    def abort(self, exc: BaseException) -> None: ...


class PageSource(Protocol):
    """A stream as windows and fetch-ahead see it: its records through the SDK's request path, its rules."""

    @property
    def name(self) -> str: ...

    @property
    def path(self) -> str: ...

    @property
    def method(self) -> str: ...

    @property
    def replication_key(self) -> str | None: ...

    @property
    def windowed(self) -> bool: ...

    @property
    def arrives_with_parent(self) -> bool: ...

    @property
    def derived_from_parent(self) -> bool: ...

    @property
    def denied(self) -> bool: ...

    @property
    def endpoint(self) -> Endpoint: ...

    @property
    def stats(self) -> RunStats: ...

    @property
    def tolerance(self) -> Tolerance: ...

    @property
    def query(self) -> Query: ...

    @property
    def run(self) -> RunResources: ...

    @property
    def sideloads(self) -> Mapping[str, str]: ...

    @property
    def child_streams(self) -> Sequence[Any]: ...

    @property
    def parent_stream_type(self) -> Any: ...

    @property
    def fanout(self) -> Any: ...  # its own Fanout (which is typed against this Protocol)

    @property
    def shape(self) -> Callable[[Any], dict[str, Any]]: ...

    @property
    def concurrency(self) -> int: ...

    @property
    def partitions(self) -> list[dict[str, Any]] | None: ...

    def request_pages(self, context: Any) -> Generator[ApiPage, None, None]: ...

    def wants(self, context: Mapping[str, Any]) -> bool: ...

    def get_child_context(self, record: dict[str, Any], context: Any) -> Any: ...
