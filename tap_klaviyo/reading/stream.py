"""The base stream every Klaviyo collection runs on, built on singer-sdk's RESTStream.

The SDK does the request loop, pagination (`JsonApiPaginator`), retries (`request_decorator` on backoff, with
the waits of `retry.RetryPolicy`), auth, state and metrics. This class says what is Klaviyo's: the first page's
query (largest page, filters, sort, includes, sparse fields), which statuses mean what, and the record shape.
It has no mixins: each SDK hook is a short delegation to a collaborator it creates in `__init__`, each in its
own module with state of its own: `query` (Query), `full_reads` (FullReads), `retries` (Retries), `tolerance`
(Tolerance), `selection` (SelectionMemo), `finishing` (Finishing, post_process's work) and `fanout` (Fanout:
windows, partitions and children fetched ahead on worker threads, through this same request path).
Subclasses declare (class attributes) and override the few hooks named here (static_filters, lookback, ...).
"""

from __future__ import annotations

import copy
from collections.abc import Generator, Iterable, Mapping
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, cast
from urllib.parse import urlsplit

import requests
from singer_sdk import RESTStream
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.helpers.types import Context, RequestFunc
from singer_sdk.pagination import BaseAPIPaginator
from singer_sdk.schema.source import SchemaDirectory
from singer_sdk.singerlib import SelectionMask
from singer_sdk.streams.rest import HTTPRequest, PageContext
from typing_extensions import override

from klaviyo_core import spec
from klaviyo_core.documents import decode, resources
from klaviyo_core.errors import check_response
from tap_klaviyo.reading.batch_files import fast_jsonl
from tap_klaviyo.reading.drift import DriftCheck
from tap_klaviyo.reading.fanout import Fanout
from tap_klaviyo.reading.finishing import Finishing
from tap_klaviyo.reading.full_reads import FullReads
from tap_klaviyo.reading.packing import NestedPacking
from tap_klaviyo.reading.pagination import ApiPage, JsonApiPaginator
from tap_klaviyo.reading.progress import RunStats
from tap_klaviyo.reading.query import WINDOW_START, Query, spec_template
from tap_klaviyo.reading.records import RecordShape
from tap_klaviyo.reading.retrying import Retries
from tap_klaviyo.reading.run import KlaviyoRun
from tap_klaviyo.reading.selection import SelectionMemo
from tap_klaviyo.reading.settings import parse_date_setting
from tap_klaviyo.reading.shape_notes import ShapeNotes
from tap_klaviyo.reading.tolerance import Tolerance

SCHEMAS_DIR = Path(__file__).parents[1] / "schemas"
#: The generated schemas (scripts/generate_schemas.py), read and cached by the SDK's own schema source.
SCHEMAS = SchemaDirectory(SCHEMAS_DIR)


class KlaviyoStream(RESTStream[Any]):
    """A Klaviyo collection, described declaratively; the SDK and the modules beside this one do the rest."""

    primary_keys: ClassVar[tuple[str, ...]] = ("id",)
    #: Context keys copied into every record (parent ids).
    context_columns: ClassVar[tuple[str, ...]] = ()
    #: Included resource type -> name of the child stream that emits it (`include=` instead of a fan-out).
    sideloads: ClassVar[dict[str, str]] = {}
    #: Spec path whose resource shape the records have, when it differs from `path`.
    schema_path: ClassVar[str | None] = None
    #: Keep only these columns (membership rows); None keeps the whole resource.
    keep_columns: ClassVar[tuple[str, ...] | None] = None
    #: Name of the column the resource id goes to.
    id_column: ClassVar[str] = "id"
    #: Extra schema properties (parent ids and the like).
    extra_properties: ClassVar[dict[str, dict[str, Any]]] = {}
    #: HTTP method of the endpoint in the spec (reports and aggregates are POST queries).
    method: ClassVar[str] = "get"
    #: Decode this stream's pages as LeanDocuments (its hot path reads only data, included and links.next).
    lean_documents: ClassVar[bool] = False
    #: Split the replication range into time windows fetched in parallel (a cursor cannot be).
    windowed: ClassVar[bool] = False
    #: Records come inside the parent's response (`included`), or are derived from the parent's records.
    arrives_with_parent: ClassVar[bool] = False
    derived_from_parent: ClassVar[bool] = False
    #: Nested objects may leave `post_process` encoded (reading/packing.py): nothing after the base's
    #: `post_process` (an override, a child's context) reads inside them. Declared by the big streams.
    nested_packing: ClassVar[bool] = False
    #: Sort value sent to Klaviyo; by default the replication key when the endpoint can sort on it.
    sort_by: ClassVar[str | None] = None
    #: Server-side field the bookmark filters on (defaults to the replication key).
    filter_field: ClassVar[str | None] = None
    includes: ClassVar[tuple[str, ...]] = ()
    additional_fields: ClassVar[dict[str, str]] = {}
    #: Setting naming the days between full reads (`full_reads`); None: the stream never loses rows.
    full_read_setting: ClassVar[str | None] = "full_read_days"
    #: A deleted parent between listing and reading: skip its children with a warning.
    skip_not_found: ClassVar[bool] = False
    #: A spent rate-limit budget (daily cap) ends this stream with a warning; the run goes on.
    stop_when_exhausted: ClassVar[bool] = False

    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: Records re-read behind the bookmark (lookback, a strict filter's second) are expected, not an error;
    #: `bookmarks.BookmarkGuard` keeps emitted bookmarks from moving back.
    check_sorted = False

    def __init__(self, tap: Any, **kwargs: Any) -> None:
        self.template = spec_template(self.path)
        self.endpoint = spec.endpoint(self.template, self.method)
        self.selection = SelectionMemo()
        if "schema" not in kwargs:
            kwargs["schema"] = copy.deepcopy(self.schema_source())
        super().__init__(tap, http_method=self.method.upper(), **kwargs)
        self.run: KlaviyoRun = tap.run
        self.klaviyo_tap = tap  # the SDK keeps its own reference private
        self.stats = RunStats()
        self.full_reads = FullReads(self, self.run, tap, activate_version=super().emit_activate_version_messages)
        self.query = Query(self, self.endpoint, self.template, self.method, self.run.end_date)
        self.retries = Retries(self.name, self.http_method, self.template, self.run, self.stats, self.logger)
        self.tolerance = Tolerance(
            self.name,
            self.logger,
            self.run,
            skip_without_scope=bool(self.config.get("skip_streams_without_scope")),
            skip_not_found=self.skip_not_found,
            stop_when_exhausted=self.stop_when_exhausted,
        )
        self.fanout = Fanout(self)
        resource = self.resource_of(self.schema_path or self.path)
        props = self.schema.get("properties", {})
        self.notes = ShapeNotes(self.name, self.logger)  # records Klaviyo sent incomplete, counted
        self.drift = DriftCheck(self.name, self.logger, props)  # fields in no schema: named once per stream
        self.shape = RecordShape.of_resource(self.id_column, resource, props, self.notes.unreadable_timestamp)
        self.finishing = Finishing(
            self,
            self.shape,
            self.drift,
            self.notes,
            self.stats,
            self.full_reads,
            self.run.end_date_iso,
            NestedPacking(props),
        )

    @classmethod
    def schema_source(cls) -> dict[str, Any]:
        """The generated schema (custom streams build theirs at start-up)."""
        return SCHEMAS.get_schema(cls.name)  # type: ignore[misc]

    @classmethod
    def resource_of(cls, path: str) -> dict[str, Any]:
        """The spec's resource the records are made of (their shape and schema): what `path` answers."""
        return spec.resource_schema(spec_template(path), cls.method)

    @classmethod
    def build_schema(cls) -> dict[str, Any]:
        """What `scripts/generate_schemas.py` writes for this stream: the spec's resource, reshaped."""
        schema = spec.resource_record_schema(
            cls.resource_of(cls.schema_path or cls.path),  # type: ignore[misc]
            extra={**{c: {"type": ["string", "null"]} for c in cls.context_columns}, **cls.extra_properties},
        )
        props = schema["properties"]
        if cls.id_column != "id":
            props[cls.id_column] = props.pop("id")
        if cls.keep_columns is not None:
            schema["properties"] = {k: props[k] for k in cls.keep_columns}
        for key in cls.primary_keys:
            schema["properties"][key]["type"] = ["string"]
        return schema

    # -- the SDK's request path --------------------------------------------------------------------

    @property
    @override
    def url_base(self) -> str:
        return str(self.config["api_url"]).rstrip("/")

    @property
    @override
    def http_headers(self) -> dict[str, str]:
        return self.run.connection.headers

    @property
    @override
    def timeout(self) -> int:
        return int(self.config.get("request_timeout") or 30)

    @property
    @override
    def requests_session(self) -> requests.Session:
        return self.run.connection.session

    @property
    @override
    def authenticator(self) -> Any:
        return self.run.connection.authenticator

    @property
    @override
    def mask(self) -> SelectionMask:
        """The SDK's selection mask, remembering its answers (asked for every key of every record)."""
        return self.selection.over(super().mask)

    @override
    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        return self.retries.decorate(func)

    @override
    def get_new_paginator(self) -> BaseAPIPaginator[Any]:
        return JsonApiPaginator(urlsplit(self.url_base).netloc)

    @override
    def get_url_params(self, context: Context | None, next_page_token: Any | None) -> dict[str, Any]:
        if next_page_token is not None:
            return {}  # links.next carries the whole query
        return self.first_page_params(context)

    # -- the query: hooks a stream overrides, over `query.Query` --------------------------------------

    def first_page_params(self, context: Mapping[str, Any] | None) -> dict[str, str]:
        """Maximum page size, filters, sort, includes, sparse fields."""
        return self.query.first_page_params(context)

    def static_filters(self, context: Mapping[str, Any] | None) -> list[str]:
        """Filters that define the stream or partition itself (channel, archived, ...)."""
        return []

    def lookback(self, context: Mapping[str, Any] | None) -> timedelta:
        """How far behind the bookmark a read starts (late arrivals)."""
        return timedelta(0)

    def start_bound(self, context: Mapping[str, Any] | None) -> datetime | None:
        """Where this run reads from: the bookmark (or start_date) less the lookback; a full read starts
        where a first run would."""
        if self.full_reads.forced:
            return parse_date_setting(self.config, "start_date")
        return self.query.start_bound(context)

    def sparse_fields(self) -> dict[str, str]:
        """`fields[<type>]=` for the attributes the catalog selects."""
        return self.query.sparse_fields()

    @property
    @override
    def is_sorted(self) -> bool:
        return self.query.is_sorted

    @override
    def get_http_request(self, *, page: PageContext) -> HTTPRequest:
        request = super().get_http_request(page=page)
        if page.next_page_token is not None and self.method == "get":
            request.url = page.next_page_token.geturl()
        request.safe_query_chars = "(),:[]"
        return request

    @override
    def validate_response(self, response: requests.Response) -> None:
        """Statuses to errors, each one readable line; a 2xx body that is not JSON (truncated) is retried."""
        self.stats.add(requests_=1)
        secrets, refreshable = self.run.secrets, self.run.connection.refreshable
        check_response(response, stream=self.name, secrets=secrets, refreshable=refreshable)

    @override
    def parse_response(self, response: requests.Response) -> Iterable[Any]:
        """One `ApiPage` per response (any thread): the SDK's request loop then yields pages, not records."""
        yield self.page_of(decode(response.content, lean=self.lean_documents))

    def page_of(self, doc: Any) -> ApiPage:
        """A decoded page: its records, and whether Klaviyo has a next one."""
        return ApiPage(self.records_of(doc), bool((doc.get("links") or {}).get("next")))

    def request_pages(self, context: Context | None) -> Generator[ApiPage, None, None]:
        """The one page source: the SDK's request loop (pagination, retries, auth, costs), a page at a time.
        Closing the iterator ends the loop without another request."""
        for page in super().request_records(context):
            yield cast(ApiPage, page)  # what parse_response yields (the SDK types the items as records)

    @override
    def request_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        for page in self.request_pages(context):
            yield from page.records

    def records_of(self, doc: Any) -> list[dict[str, Any]]:
        """A page's resources as records; included resources go to the child streams that emit them."""
        data = resources(doc)
        records = [self.shape(resource) for resource in data]
        self.fanout.page_arrived(data, doc.get("included"), records)
        return records

    # -- records -----------------------------------------------------------------------------------

    @property
    def denied(self) -> bool:
        """The stream stopped with a warning (no scope, a spent budget): nothing more is fetched for it."""
        return self.tolerance.denied

    @property
    def concurrency(self) -> int:
        return int(self.config.get("max_concurrency") or 8)

    def wants(self, context: Mapping[str, Any]) -> bool:
        """Whether this child has anything to fetch for that parent (prefetch asks first)."""
        return True

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Records fetched ahead on a worker when there are some; else the SDK's request path, here."""
        if self.denied or (context is not None and not self.wants(context)):
            return
        self.run.begin()
        position = self.replication_key if self.windowed else None
        with self.tolerance.tolerated_errors(context):
            self.run.stopwatch.begin(self.stats)
            self.run.bookmarks.partition_started(self, context)
            yield from self.stats.counted(self.fanout.records(context), selected=self.selected, position_key=position)
            self.run.stopwatch.end(self.stats)

    @override
    def post_process(self, row: dict[str, Any], context: Context | None = None) -> dict[str, Any] | None:
        """Main thread, once per record: parent ids, kept columns, end_date, derived rows (`finishing`)."""
        return self.finishing(row, context)

    @override
    def get_batches(self, batch_config: Any, context: Context | None = None) -> Iterable[tuple[Any, list[str]]]:
        """JSONL files through the fast encoder (`batch_files`), announced as what the user asked for."""
        fast = fast_jsonl(batch_config)
        if fast is None:
            yield from super().get_batches(batch_config, context)
            return
        for _written, manifest in super().get_batches(fast, context):
            yield batch_config.encoding, manifest

    @override
    def generate_child_contexts(self, record: dict[str, Any], context: Context | None) -> Iterable[Context | None]:
        """None without a selected child: the SDK would otherwise copy every record as the context of no child."""
        if not self.syncs_children:
            return ()
        return super().generate_child_contexts(record, context)

    @cached_property
    def syncs_children(self) -> bool:
        """A child stream is selected (asked once the sync runs: the catalog is applied by then)."""
        return any(child.selected or child.has_selected_descendents for child in self.child_streams)

    @property
    @override
    def replication_method(self) -> str:
        """FULL_TABLE on a full read (`full_reads`), else what the catalog says."""
        return self.full_reads.replication_method

    def declared_replication_method(self) -> str:
        """What the catalog and the class say, before a full read changes it."""
        return str(super().replication_method)

    @property
    @override
    def emit_activate_version_messages(self) -> bool:
        return self.full_reads.activate_version

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> Any:
        """Bookmarks never pass the time the run started (future-dated records notwithstanding)."""
        self.full_reads.begins()  # deletions: the SDK asks this first thing in sync()
        return self.run.started if self.replication_key else None

    @override
    def finalize_state_progress_markers(self, state: dict[str, Any] | None = None) -> None:
        if state is None:
            self.notes.report(self.replication_key, self.primary_keys)
            self.full_reads.finished()  # deletions: a complete read releases its ACTIVATE_VERSION
        super().finalize_state_progress_markers(state)
        if state is None and self.parent_stream_type is None:
            self.fanout.close()  # the SDK calls this once a top-level stream (and its children) is synced


__all__ = ["WINDOW_START", "KlaviyoStream"]
