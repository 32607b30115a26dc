"""The Klaviyo engine every stream runs on.

One place for the things every endpoint shares: headers and auth, query building from the spec's rules,
`links.next` pagination, per-endpoint pacing, retries that honour Retry-After, readable errors, and the
record shape (attributes lifted to the top level, `id`, `<relationship>_id`, UTC timestamps).
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from functools import cache, cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast
from urllib.parse import quote, urlencode, urlsplit

import msgspec
import requests
import urllib3
from singer_sdk import RESTStream
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from typing_extensions import override

from tap_klaviyo import spec
from tap_klaviyo.concurrency import Prefetch, ordered
from tap_klaviyo.drift import DriftCheck  # issue 11
from tap_klaviyo.errors import (
    KlaviyoAPIError,
    KlaviyoAuthError,
    KlaviyoPermissionError,
    RateLimitExhausted,
    ThrottledError,
    klaviyo_detail,
    redact,
)
from tap_klaviyo.output import SingerOutput
from tap_klaviyo.pacing import Limiter
from tap_klaviyo.progress import RunStats, quiet_logger

if TYPE_CHECKING:
    from tap_klaviyo.tap import TapKlaviyo

SCHEMAS_DIR = Path(__file__).parent / "schemas"

#: Transient failures: retried with jittered exponential backoff, at most this many attempts.
MAX_ATTEMPTS = 6
#: ...and give up on them once this long has passed since the first try (a dead API fails within 2 min).
MAX_RETRY_ELAPSED_S = 100.0
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 30.0
#: 429s: keep waiting while each Retry-After is at most this, and their sum at most the total.
MAX_RETRY_AFTER_S = 600.0
MAX_THROTTLED_TOTAL_S = 3600.0

#: Time windows of a windowed stream: sized for about this many pages each, and at most this many.
PAGES_PER_WINDOW = 2
MAX_WINDOWS = 2000
#: Endpoints allowing at most this many requests a minute are worth starting before their turn.
SLOW_STEADY_LIMIT = 150

_PLACEHOLDER = re.compile(r"\{[^}]+\}")
_json_decoder = msgspec.json.Decoder()


def utc_iso(value: datetime) -> str:
    """Klaviyo's own timestamp form, in UTC: what filters take and what records carry."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat()


def normalize_timestamp(value: Any) -> Any:
    """Any ISO-8601 offset -> UTC `+00:00`; cheap when the value already is (the common case)."""
    if not isinstance(value, str) or value.endswith("+00:00"):
        return value
    if value.endswith("Z"):
        return value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return utc_iso(parsed)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def spec_template(path: str) -> str:
    """`/api/lists/{list_id}/profiles` -> the spec's `/api/lists/{id}/profiles`."""
    template = spec.match_path(_PLACEHOLDER.sub("x", path))
    if template is None:
        msg = f"{path} is not a Klaviyo API path"
        raise ValueError(msg)
    return template


class Document(dict[str, Any]):
    """A parsed JSON:API document that remembers how many bytes of JSON it came from (prefetch budgets)."""

    __slots__ = ("size",)

    def __init__(self, parsed: dict[str, Any], size: int) -> None:
        super().__init__(parsed)
        self.size = size


class _Fields(msgspec.Struct):
    """Read like the dicts the rest of the engine expects (`.get`, `[]`), for the fields a struct has."""

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self.__struct_fields__ else default

    def __getitem__(self, key: str) -> Any:
        if key not in self.__struct_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)


class LeanRelationship(_Fields):
    data: Any = None


class LeanResource(_Fields):
    type: Any = None
    id: Any = None
    attributes: dict[str, Any] | None = None
    relationships: dict[str, LeanRelationship] | None = None


class LeanDocument(_Fields):
    """A JSON:API page decoded without the `links` of every resource and relationship, which the tap never
    reads: about half the objects of a plain decode, so half the CPU to build them and to free them."""

    data: list[LeanResource] | LeanResource | None = None
    included: list[LeanResource] | None = None
    links: dict[str, Any] | None = None
    meta: Any = None
    size: int = 0


_lean_decoder = msgspec.json.Decoder(LeanDocument)


def read_whole(response: requests.Response) -> requests.Response:
    """The body in one read (the response was sent with stream=True): requests reads it 10 KB at a time,
    each read a system call after which every other thread contends for the GIL. Errors are requests' own,
    as `Response.content` would raise them."""
    try:
        response._content = response.raw.read(decode_content=True) or b""
        response._content_consumed = True  # type: ignore[attr-defined]
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.exceptions.ReadTimeout(exc) from exc
    except urllib3.exceptions.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise requests.exceptions.ConnectionError(exc) from exc
    finally:
        response.close()  # back to the pool when the body was read; closed otherwise
    return response


def document(response: requests.Response, *, lean: bool = False) -> dict[str, Any]:
    """The parsed JSON body, parsed once per response. `lean`: a LeanDocument (read through the same `.get`
    and `[]` as a dict) when the body has the JSON:API shape, else a plain dict."""
    doc: dict[str, Any] | None = getattr(response, "_klaviyo_doc", None)
    if doc is None:
        content = response.content
        if lean and content:
            try:
                lean_doc = _lean_decoder.decode(content)
                lean_doc.size = len(content)
                doc = cast(dict[str, Any], lean_doc)
            except msgspec.ValidationError:
                doc = None
        if doc is None:
            parsed = _json_decoder.decode(content) if content else {}
            doc = Document(parsed, len(content)) if isinstance(parsed, dict) else parsed
        response._klaviyo_doc = doc  # type: ignore[attr-defined]
    return doc


class KlaviyoStream(RESTStream[Any]):
    """A Klaviyo collection, described declaratively; the engine does the rest."""

    primary_keys: ClassVar[tuple[str, ...]] = ("id",)
    #: Sort value sent to Klaviyo; by default the replication key when the endpoint can sort on it.
    sort_by: ClassVar[str | None] = None
    #: Server-side field the bookmark filters on (defaults to the replication key).
    filter_field: ClassVar[str | None] = None
    includes: ClassVar[tuple[str, ...]] = ()
    additional_fields: ClassVar[dict[str, str]] = {}
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
    #: Extra schema properties the engine adds (parent ids and the like).
    extra_properties: ClassVar[dict[str, dict[str, Any]]] = {}
    #: A deleted parent between listing and reading: skip its children with a warning.
    skip_not_found: ClassVar[bool] = False
    #: HTTP method of the endpoint in the spec (reports and aggregates are POST queries).
    method: ClassVar[str] = "get"
    #: Decode this stream's pages as LeanDocuments (its hot path reads only data, included and links.next).
    lean_documents: ClassVar[bool] = False
    #: A spent rate-limit budget (daily cap) ends this stream with a warning; the run goes on.
    stop_when_exhausted: ClassVar[bool] = False

    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: TapKlaviyo, **kwargs: Any) -> None:
        self.template = spec_template(self.path)
        self.endpoint = spec.endpoint(self.template, self.method)
        super().__init__(tap, schema=copy.deepcopy(self.schema_source()), **kwargs)
        self.klaviyo: TapKlaviyo = tap
        self.stats = RunStats()
        partitioned = type(self).partitions is not RESTStream.partitions
        quiet_logger(self.logger.name, partitioned=partitioned or self.parent_stream_type is not None)
        self.denied = False
        self._prefetch: Prefetch[dict[str, Any]] = Prefetch(self.concurrency, budget=tap.prefetch_budget)
        self._announced = False
        self._sideloaded: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self._state_of: tuple[Any, Any, dict[str, Any]] | None = None
        #: When the page being emitted was read (RECORD time_extracted); None: now.
        self._extracted_at: datetime | None = None
        resource = spec.resource_schema(spec_template(self.schema_path or self.path), self.method)
        self._to_one = [(n, spec.relationship_column(n)) for n in spec.to_one_relationships(resource)]
        props = self.schema.get("properties", {})
        self.drift = DriftCheck(self.name, self.logger, props)  # issue 11: name undeclared fields once
        self._timestamp_columns = [k for k, v in props.items() if v.get("format") == "date-time"]
        self.sort_value = self.sort_by
        if self.sort_value is None and self.replication_key and self.replication_key in self.endpoint.sorts:
            self.sort_value = self.replication_key

    @property
    @override
    def is_sorted(self) -> bool:
        return bool(self.replication_key and self.sort_value == self.replication_key)

    @classmethod
    def schema_source(cls) -> dict[str, Any]:
        """The generated schema (custom streams build theirs at start-up)."""
        return _load_schema(cls.name)  # type: ignore[misc]

    def has_bookmark(self, context: Mapping[str, Any] | None) -> bool:
        """A previous run left a bookmark here (not just a start_date)."""
        state = self.get_context_state(dict(context) if context else None)
        return bool(state.get("replication_key_value"))

    @classmethod
    def build_schema(cls) -> dict[str, Any]:
        """What `scripts/generate_schemas.py` writes for this stream: the spec's resource, reshaped."""
        schema = spec.record_schema(
            spec_template(cls.schema_path or cls.path),  # type: ignore[misc]
            cls.method,
            extra={
                **{c: {"type": ["string", "null"]} for c in cls.context_columns},
                **cls.extra_properties,
            },
        )
        props = schema["properties"]
        if cls.id_column != "id":
            props[cls.id_column] = props.pop("id")
        if cls.keep_columns is not None:
            schema["properties"] = {k: props[k] for k in cls.keep_columns}
        for key in cls.primary_keys:
            schema["properties"][key]["type"] = ["string"]
        return schema

    # -- request construction ----------------------------------------------------------------------

    @property
    @override
    def url_base(self) -> str:
        return str(self.config["api_url"]).rstrip("/")

    @property
    @override
    def http_headers(self) -> dict[str, str]:
        return {
            "revision": str(self.config["revision"]),
            "Accept": "application/vnd.api+json",
            "User-Agent": self.klaviyo.user_agent,
        }

    @property
    @override
    def timeout(self) -> int:
        return int(self.config.get("request_timeout") or 30)

    @property
    @override
    def requests_session(self) -> requests.Session:
        return self.klaviyo.session

    def limiter_for(self, template: str, method: str = "get", variant: str = "") -> Limiter:
        """The run-wide limiter of an endpoint (one per endpoint, shared by every stream)."""
        rules = spec.endpoint(template, method)
        burst, steady, daily = rules.rate
        if variant == "predictive":
            burst, steady = 10, 150
        key = f"{method.upper()} {template}{' ' + variant if variant else ''}"
        return self.klaviyo.pacer.limiter(key, burst, steady, daily)

    def start_bound(self, context: Mapping[str, Any] | None) -> datetime | None:
        """Where this run reads from: the bookmark (or start_date), less the lookback."""
        if not self.replication_key:
            return None
        start = self.get_starting_timestamp(context)
        return start - self.lookback(context) if start is not None else None

    def bound_filters(self, lower: datetime | None, upper: datetime | None) -> list[str]:
        """`from <= key < to` in the operators this endpoint allows (end_date caps `to`)."""
        if not self.replication_key:
            return []
        field = self.filter_field or self.replication_key
        out: list[str] = []
        if lower is not None:
            operator = self.endpoint.lower_bound_operator(field)
            if operator == "greater-than":
                # Only strict filtering exists here: step back a second so records tied with the
                # bound are read again rather than lost (the engine drops what falls below it).
                lower -= timedelta(seconds=1)
            out.append(f"{operator}({field},{utc_iso(lower)})")
        end = self.klaviyo.end_date
        if end is not None and (upper is None or end < upper):
            upper = end
        if upper is not None and self.endpoint.upper_bound_operator(field):
            out.append(f"less-than({field},{utc_iso(upper)})")
        return out

    def lookback(self, context: Mapping[str, Any] | None) -> timedelta:
        return timedelta(0)

    def static_filters(self, context: Mapping[str, Any] | None) -> list[str]:
        """Filters that define the stream or partition itself (channel, archived, ...)."""
        return []

    def query(
        self,
        context: Mapping[str, Any] | None,
        lower: datetime | None = None,
        upper: datetime | None = None,
        *,
        page_size: int | None = None,
    ) -> dict[str, str]:
        """First-page query: maximum page size, filters, sort, includes; later pages use links.next."""
        params: dict[str, str] = {}
        if self.endpoint.max_page_size:
            params["page[size]"] = str(page_size or self.endpoint.max_page_size)
        filters = [*self.static_filters(context), *self.bound_filters(lower, upper)]
        if filters:
            params["filter"] = ",".join(filters)
        if self.sort_value:
            params["sort"] = self.sort_value
        includes = [*self.includes, *self._active_sideloads()]
        if includes:
            params["include"] = ",".join(includes)
        params.update(self.additional_fields)
        params.update(self.sparse_fields())
        return params

    def sparse_fields(self) -> dict[str, str]:
        """`fields[<type>]=` listing only the attributes the catalog selects, when some are deselected.

        The key, the replication key and relationship ids are always kept.
        """
        resource_type = spec.resource_type(self.template, self.method)
        param = f"fields[{resource_type}]"
        allowed = self.endpoint.sparse_fields.get(param)
        properties = list(self.schema.get("properties", {}))
        if not allowed or not properties:
            return {}
        selected = [p for p in properties if self.mask.get(("properties", p), True)]
        if len(selected) == len(properties):
            return {}
        keep = {*self.primary_keys, self.replication_key or ""}
        attributes = [p for p in properties if p in allowed and (p in selected or p in keep)]
        return {param: ",".join(attributes)} if attributes else {}

    def _active_sideloads(self) -> list[str]:
        return [rel for rel, child in self.sideloads.items() if self._sideload_active(child)]

    def _sideload_active(self, child: str) -> bool:
        stream = next((s for s in self.child_streams if s.name == child), None)
        return stream is not None and (stream.selected or stream.has_selected_descendents)

    # -- sending -----------------------------------------------------------------------------------

    def send(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        *,
        method: str = "GET",
        json_body: Any = None,
        limiter: Limiter | None = None,
    ) -> dict[str, Any]:
        """One logical request: paced, retried, checked; returns the parsed JSON:API document."""
        self._check_same_host(url)
        query = urlencode(list((params or {}).items()), quote_via=quote)
        full_url = f"{url}?{query}" if query else url
        template = spec_template(urlsplit(full_url).path)
        limiter = limiter or self.limiter_for(template, method.lower())
        request = requests.Request(method, full_url, headers=self.http_headers, json=json_body)
        prepared = self.requests_session.prepare_request(request)
        failures = 0
        throttled_s = 0.0
        reauthenticated = False
        first_try = time.monotonic()
        while True:
            self.klaviyo.check_aborted()
            try:
                # Paced when it leaves, not when it queues: a request waiting for a free slot would otherwise
                # go out in a burst with others that were counted seconds earlier.
                with self.klaviyo.request_slot(limiter):
                    self.klaviyo.authenticator(prepared)
                    self.stats.add(requests_=1)
                    response = read_whole(self.requests_session.send(prepared, timeout=self.timeout, stream=True))
                document_ = self._checked(response, template)
                self._respect_quota_headers(response, limiter)
                return document_
            except ThrottledError as exc:
                wait = exc.retry_after
                if wait is None:
                    wait = self._backoff(failures + 1)
                if wait > MAX_RETRY_AFTER_S or throttled_s + wait > MAX_THROTTLED_TOTAL_S:
                    resets = datetime.now(timezone.utc) + timedelta(seconds=wait)
                    msg = (
                        f"{self.name}: Klaviyo rate limit on {method} {template} asks for a wait of "
                        f"{wait:.0f} s (after {throttled_s:.0f} s of waiting already): it resets at "
                        f"{resets:%Y-%m-%d %H:%M} UTC; stopping instead of sleeping. Run again later."
                    )
                    raise RateLimitExhausted(msg) from None
                throttled_s += wait
                self.stats.add(throttled=1)
                limiter.hold(wait)
            except KlaviyoAuthError:
                if reauthenticated or not self.klaviyo.authenticator.refresh_after_401():
                    raise
                reauthenticated = True
            except (RetriableAPIError, requests.RequestException, ValueError) as exc:
                failures += 1
                wait = self._backoff(failures)
                if failures >= MAX_ATTEMPTS or time.monotonic() - first_try + wait > MAX_RETRY_ELAPSED_S:
                    msg = (
                        f"{self.name}: {method} {template} failed {failures} times in a row; last error: "
                        f"{self._describe(exc)}. Klaviyo or the network is unavailable: run again later "
                        "(state up to the last emitted record is kept)."
                    )
                    raise FatalAPIError(redact(msg, self.klaviyo.secrets)) from None
                self.stats.add(retries=1)
                self.logger.warning(
                    "%s: %s %s: %s; retry %d of %d in %.1f s",
                    self.name,
                    method,
                    template,
                    redact(self._describe(exc), self.klaviyo.secrets),
                    failures,
                    MAX_ATTEMPTS - 1,
                    wait,
                )
                time.sleep(wait)

    @staticmethod
    def _describe(exc: BaseException) -> str:
        if isinstance(exc, RetriableAPIError):
            return str(exc)
        if isinstance(exc, requests.Timeout):
            return "request timed out"
        if isinstance(exc, requests.ConnectionError):
            return "connection failed or dropped"
        if isinstance(exc, ValueError | msgspec.DecodeError):
            return "response was not valid JSON (truncated?)"
        return type(exc).__name__

    @staticmethod
    def _backoff(attempt: int) -> float:
        """Full-jitter exponential backoff: spread retries of parallel workers apart."""
        return random.uniform(0.5, 1.0) * min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1))

    def _check_same_host(self, url: str) -> None:
        if urlsplit(url).netloc != urlsplit(self.url_base).netloc:
            msg = f"{self.name}: refusing to follow a link to another host ({urlsplit(url).netloc})"
            raise FatalAPIError(msg)

    @staticmethod
    def _respect_quota_headers(response: requests.Response, limiter: Limiter) -> None:
        """Other integrations share the account's quota: when Klaviyo says none is left in this window,
        pause the endpoint until it resets instead of spending a request on a 429."""
        remaining = response.headers.get("RateLimit-Remaining")
        reset = response.headers.get("RateLimit-Reset")
        if remaining is None or reset is None:
            return
        try:
            if int(float(remaining)) <= 0:
                limiter.hold(min(max(float(reset), 0.0), 60.0))
        except ValueError:
            return

    def _checked(self, response: requests.Response, template: str) -> dict[str, Any]:
        status = response.status_code
        if status < 300:
            try:
                lean = self.lean_documents and template == self.template and response.request.method == "GET"
                return document(response, lean=lean)
            except msgspec.DecodeError:
                msg = f"HTTP {status} with a body that is not valid JSON (truncated?)"
                raise RetriableAPIError(msg, response) from None
        try:
            body: Any = document(response)
        except msgspec.DecodeError:
            body = None
        detail = klaviyo_detail(body) or (response.reason or "")
        where = f"{response.request.method} {template}"
        if status == 429:
            raise ThrottledError(f"429 throttled: {detail}", response, _retry_after(response))
        if status >= 500 or status == 408:
            raise RetriableAPIError(f"HTTP {status} {detail[:200]}", response)
        if status == 401:
            msg = (
                f"authentication failed: Klaviyo answered 401 to {where} ({detail}). "
                "Check api_key (a private key, pk_...) or the OAuth client_id/client_secret/refresh_token."
            )
            raise KlaviyoAuthError(redact(msg, self.klaviyo.secrets))
        if status == 403:
            scopes = spec.endpoint(template, response.request.method.lower()).scopes  # type: ignore[union-attr]
            msg = (
                f"{self.name}: the key lacks the Klaviyo scope {', '.join(scopes) or '(unknown)'} needed for "
                f"{where} (403: {detail}). Add the scope to the key, or set skip_streams_without_scope."
            )
            raise KlaviyoPermissionError(redact(msg, self.klaviyo.secrets), status, scopes)
        msg = f"{self.name}: Klaviyo rejected {where} with {status}: {detail}"
        raise KlaviyoAPIError(redact(msg, self.klaviyo.secrets), status)

    def pages(self, url: str, params: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Every page of a collection, following links.next (whose query replaces the first one's)."""
        limiter = self.limiter_for(spec_template(urlsplit(url).path), "get", self.limiter_variant())
        next_url: str | None = url
        while next_url:
            doc = self.send(next_url, params, limiter=limiter)
            yield doc
            links = doc.get("links") or {}
            following = links.get("next")
            if following == next_url and not params:
                msg = f"{self.name}: Klaviyo returned the same next link twice ({self.template})"
                raise FatalAPIError(msg)
            next_url, params = following, None

    def limiter_variant(self) -> str:
        return ""

    # -- records -----------------------------------------------------------------------------------

    @property
    def concurrency(self) -> int:
        return int(self.config.get("max_concurrency") or 8)

    @override
    def request_records(self, context: Mapping[str, Any] | None) -> Iterable[dict[str, Any]]:
        if self.denied or (context is not None and not self.wants(context)):
            return
        with self.tolerated_errors(context):
            if context and not self._announced and self.partitions:
                self._announced = True
                self.announce_partitions(self.partitions)
            claimed = self._prefetch.claim(_key(context))
            self.stats.begin()
            for doc in claimed if claimed is not None else self.fetch(context):
                self.klaviyo.check_aborted()
                self._extracted_at = utc_now()
                self.stats.touch()
                yield from self.resources(doc)
            self.stats.end()

    @override
    def get_records(self, context: Mapping[str, Any] | None) -> Iterable[dict[str, Any]]:
        return self.request_records(context)  # the SDK's `yield from` adds a generator frame per record

    def fetch(self, context: Mapping[str, Any] | None) -> Iterator[dict[str, Any]]:
        """The documents of one stream or partition.

        Query building reads state, so it happens here, on the calling (main) thread. A windowed stream
        reads its first page; if there is more, the rest of the range is split into time windows fetched
        in parallel and handed back in order.
        """
        url = self.get_url(dict(context) if context else None)
        start = self.start_bound(context)
        first = self.query(context, start, None)
        if not (self.windowed and self.concurrency > 1 and self.replication_key):
            return self.pages(url, first)
        return self._windowed_pages(url, context, first)

    def _windowed_pages(
        self, url: str, context: Mapping[str, Any] | None, first_query: dict[str, str]
    ) -> Iterator[dict[str, Any]]:
        key = str(self.replication_key)
        doc = self.send(url, first_query)
        yield doc
        data = doc.get("data") or []
        if not (doc.get("links") or {}).get("next") or not data:
            return
        last = normalize_timestamp((data[-1].get("attributes") or {}).get(key))
        seen_at_last = {r.get("id") for r in data if normalize_timestamp((r.get("attributes") or {}).get(key)) == last}
        lower = datetime.fromisoformat(last)
        stop = min(self.klaviyo.run_started, self.klaviyo.end_date or self.klaviyo.run_started)
        count = self.window_count(data, lower, stop)
        if count > 1 and stop - lower > timedelta(minutes=count):
            step = (stop - lower) / count
            edges: list[datetime | None] = [lower + step * i for i in range(count)]
        else:
            edges = [lower]
        self.stats.range = (datetime.fromisoformat(oldest) if (oldest := self._value(data[0])) else lower, stop)
        bounds = list(zip(edges, [*edges[1:], None], strict=True))
        producers = [
            partial(self._window_pages, url, self.query(context, lo, hi), lo, seen_at_last if i == 0 else set())
            for i, (lo, hi) in enumerate(bounds)
        ]
        # One page buffered per window: memory stays the same whatever the size of the range.
        yield from ordered(producers, ahead=self.concurrency, buffer=1)

    def _value(self, resource: dict[str, Any]) -> str | None:
        """The replication value of a raw resource, in UTC."""
        value = normalize_timestamp((resource.get("attributes") or {}).get(str(self.replication_key)))
        return value if isinstance(value, str) else None

    def window_count(self, first_page: list[dict[str, Any]], lower: datetime, stop: datetime) -> int:
        """About `PAGES_PER_WINDOW` pages a window, from the first page's density: small ranges stay one cursor,
        big ones fan out into short windows, so the window being emitted is never a long chain of pages while
        the ones after it wait with a page each."""
        key = str(self.replication_key)
        oldest = normalize_timestamp((first_page[0].get("attributes") or {}).get(key))
        covered = (lower - datetime.fromisoformat(oldest)).total_seconds() if oldest else 0.0
        if covered <= 0:
            return self.concurrency * 2
        expected_pages = max((stop - lower).total_seconds(), 0.0) / covered
        return max(1, min(MAX_WINDOWS, math.ceil(expected_pages / PAGES_PER_WINDOW)))

    def _window_pages(
        self, url: str, params: dict[str, str], floor: datetime | None, already: set[Any]
    ) -> Iterator[dict[str, Any]]:
        """Pages of one window, less what falls below it (a strict filter steps back a second) and the
        records tied with the first page's last value that the first page already had."""
        floor_iso = utc_iso(floor) if floor is not None else ""
        key = str(self.replication_key)
        field = self.filter_field or key
        strict = floor is not None and self.endpoint.lower_bound_operator(field) == "greater-than"
        for doc in self.pages(url, params):
            data = doc.get("data")
            if isinstance(data, list) and (already or strict):
                doc["data"] = [
                    r
                    for r in data
                    if r.get("id") not in already
                    and normalize_timestamp((r.get("attributes") or {}).get(key) or floor_iso) >= floor_iso
                ]
            yield doc

    #: Split the replication range into time windows fetched in parallel (a cursor cannot be).
    windowed: ClassVar[bool] = False

    def announce_partitions(self, contexts: Iterable[Mapping[str, Any] | None]) -> None:
        """Start fetching partitions or children before the SDK asks for them, at most `concurrency` at once.

        Runs on the main thread, or on a worker for a child without a bookmark of its own (nothing in the
        state to read or write). The pages a job fetches announce their own children as they arrive.
        """
        if self.concurrency <= 1 or self.denied:
            return
        for context in contexts:
            frozen = dict(context) if context is not None else None
            key = _key(frozen)
            if (frozen is not None and not self.wants(frozen)) or self._prefetch.announced(key):
                continue
            if self.replication_key:
                self._write_starting_replication_value(frozen)
            documents = self.fetch(frozen)  # the query is built here, before any worker runs
            self._prefetch.announce(key, partial(self._announcing, documents))

    def _announcing(self, documents: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """A job's pages, each announcing its children before it is handed over (on the worker).

        An error that will end the run ends it now, not when the main thread reaches this stream.
        """
        try:
            for doc in documents:
                if self.child_streams:
                    data = doc.get("data") or []
                    data = data if isinstance(data, list) else [data]
                    self.announce_descendants(data, doc.get("included"), worker=True)
                yield doc
        except Exception as exc:
            if not self.tolerates(exc):
                self.klaviyo.abort(exc)
            raise

    def wants(self, context: Mapping[str, Any]) -> bool:
        """Whether this child has anything to fetch for that parent (prefetch asks first)."""
        return True

    def announce_descendants(
        self,
        resources: list[dict[str, Any]],
        included: list[dict[str, Any]] | None = None,
        *,
        worker: bool = False,
    ) -> None:
        """A page of parents is known: start fetching their children (and grandchildren) now.

        On a worker, only children whose requests need nothing from the state are started; the main thread
        announces the rest when it reaches the page.
        """
        for child in self.child_streams:
            if not isinstance(child, KlaviyoStream) or not (child.selected or child.has_selected_descendents):
                continue
            if isinstance(child, DerivedStream):
                continue
            if isinstance(child, SideloadedStream):
                if worker:
                    found = self._linked(resources, included or [], child.name)
                    child.announce_descendants([r for rs in found.values() for r in rs], worker=True)
                else:
                    buffered = self._sideloaded.get(child.name, {})
                    child.announce_descendants([r for p in resources for r in buffered.get(str(p.get("id")), [])])
                continue
            if worker and child.replication_key:
                continue
            contexts = [self.get_child_context(self.light_record(r), None) for r in resources]
            child.announce_partitions(c for c in contexts if c)

    def start_early(self) -> bool:
        """Begin this stream's requests now, before the SDK reaches it: for streams held back by a tight rate
        limit, which then overlap with the streams synced before them. Main thread, at the start of the run."""
        if self.concurrency <= 1 or self.denied or self.parent_stream_type is not None or not self.slow:
            return False
        partitions = self.partitions
        self._announced = True
        self.announce_partitions(partitions if partitions else [None])
        return True

    @property
    def slow(self) -> bool:
        """This stream, or a selected descendant, requests an endpoint with a tight steady limit."""
        if self.method != "get":
            return False
        if not isinstance(self, SideloadedStream) and self.endpoint.rate[1] <= SLOW_STEADY_LIMIT:
            return True
        return any(
            isinstance(c, KlaviyoStream) and (c.selected or c.has_selected_descendents) and c.slow
            for c in self.child_streams
        )

    @override
    def finalize_state_progress_markers(self, state: dict[str, Any] | None = None) -> None:
        super().finalize_state_progress_markers(state)
        if state is None and self.parent_stream_type is None:
            self.close_prefetch()  # the SDK calls this once a top-level stream (and its children) is synced

    def close_prefetch(self) -> None:
        """The stream is done: drop fetched pages nobody will claim (children of records not emitted)."""
        self._prefetch.close()
        for child in self.child_streams:
            if isinstance(child, KlaviyoStream):
                child.close_prefetch()

    def light_record(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Just the id and relationship ids: enough to name a child's context."""
        record: dict[str, Any] = {"id": resource.get("id")}
        relationships = resource.get("relationships") or {}
        for name, column in self._to_one:
            data = (relationships.get(name) or {}).get("data")
            record[column] = data.get("id") if isinstance(data, dict) else None
        return record

    @contextmanager
    def tolerated_errors(self, context: Mapping[str, Any] | None) -> Iterator[None]:
        """Errors that end a stream or partition with a warning instead of failing the run."""
        try:
            yield
        except (KlaviyoAPIError, RateLimitExhausted) as exc:
            if not self.tolerates(exc):
                raise
            if isinstance(exc, KlaviyoPermissionError):
                self.denied = True
                self.logger.warning("skipping stream %s: %s", self.name, exc)
            elif isinstance(exc, RateLimitExhausted):
                self.denied = True
                self.logger.warning("%s stopped early, its state kept where it got: %s", self.name, exc)
            else:
                self.logger.warning("%s: %s is gone (404); skipping it", self.name, dict(context or {}))

    def tolerates(self, exc: BaseException) -> bool:
        """Whether `exc` ends only this stream or partition (with a warning) rather than the run."""
        if exc is self.klaviyo.abort_error:
            return False  # another stream's failure, raised here to end the run early
        if isinstance(exc, KlaviyoPermissionError):
            return bool(self.config.get("skip_streams_without_scope"))
        if isinstance(exc, KlaviyoAPIError):
            return self.skip_not_found and exc.status == 404
        if isinstance(exc, RateLimitExhausted):
            return self.stop_when_exhausted
        return False

    def resources(self, doc: dict[str, Any]) -> list[dict[str, Any]]:
        """The page's resources; included ones a child stream emits are set aside for it first."""
        data = doc.get("data") or []
        if not isinstance(data, list):
            data = [data]
        if self.sideloads and doc.get("included"):
            self._set_aside_included(data, doc["included"])
        if self.child_streams and self.concurrency > 1:
            self.announce_descendants(data)
        return data

    def _set_aside_included(self, data: list[dict[str, Any]], included: list[dict[str, Any]]) -> None:
        """Keep included resources for the child streams that emit them, by parent."""
        for child in self.sideloads.values():
            if self._sideload_active(child):
                self._sideloaded.setdefault(child, {}).update(self._linked(data, included, child))

    def _linked(
        self, data: list[dict[str, Any]], included: list[dict[str, Any]], child: str
    ) -> dict[str, list[dict[str, Any]]]:
        """Parent id -> the included resources its relationship lists for `child` (JSON:API linkage)."""
        rels = [rel for rel, name in self.sideloads.items() if name == child]
        by_key = {(r.get("type"), r.get("id")): r for r in included}
        out: dict[str, list[dict[str, Any]]] = {}
        for parent in data:
            relationships = parent.get("relationships") or {}
            for rel in rels:
                linkage = (relationships.get(rel) or {}).get("data") or []
                found = [by_key[(ref["type"], ref["id"])] for ref in linkage if (ref["type"], ref["id"]) in by_key]
                out[str(parent.get("id"))] = found
        return out

    def take_sideloaded(self, child: str, parent_id: str) -> list[dict[str, Any]]:
        return self._sideloaded.get(child, {}).pop(parent_id, [])

    @override
    def post_process(self, row: dict[str, Any], context: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """JSON:API resource -> record. Mutates the freshly parsed resource instead of copying it."""
        if type(row) is LeanResource:  # the hot path, without a method call per field
            record: dict[str, Any] = row.attributes or {}
            record[self.id_column] = row.id
            lean_relationships = row.relationships
            if lean_relationships:
                for name, column in self._to_one:
                    relationship = lean_relationships.get(name)
                    data = relationship.data if relationship is not None else None
                    record[column] = data.get("id") if isinstance(data, dict) else None
        else:
            record = row.get("attributes") or {}
            record[self.id_column] = row.get("id")
            relationships = row.get("relationships")
            if relationships:
                for name, column in self._to_one:
                    data = (relationships.get(name) or {}).get("data")
                    record[column] = data.get("id") if isinstance(data, dict) else None
        for column in self._timestamp_columns:
            value = record.get(column)
            if value is not None:
                record[column] = normalize_timestamp(value)
        if context:
            for column in self.context_columns:
                record[column] = context.get(column)
        if self.keep_columns is not None:
            record = {k: record.get(k) for k in self.keep_columns}
        cut = self._end_cut
        if cut is not None and (record.get(cut[0]) or "") >= cut[1]:
            return None
        if self._derived:
            self._derive_children(record)
        return record

    @cached_property
    def _end_cut(self) -> tuple[str, str] | None:
        """(replication key, end_date) when records at or after end_date are dropped."""
        end = self.klaviyo.end_date_iso
        return (self.replication_key, end) if end and self.replication_key else None

    @cached_property
    def _derived(self) -> list[DerivedStream]:
        return [
            c for c in self.child_streams if isinstance(c, DerivedStream) and (c.selected or c.has_selected_descendents)
        ]

    def _derive_children(self, record: dict[str, Any]) -> None:
        for child in self._derived:
            self._sideloaded.setdefault(child.name, {})[str(record["id"])] = child.derive(record)

    @override
    def _increment_stream_state(self, latest_record: dict[str, Any], *, context: Any = None) -> None:
        """Bookmarks only move forward, and never past the time the run started (future-dated records).

        Records re-read behind the bookmark (lookback, the second a strict filter steps back) leave it alone.
        A sorted stream's bookmark is set directly (what the SDK would do, without its per-record lookups).
        """
        key = self.replication_key
        if key:
            value = latest_record.get(key)
            if value is None:
                return
            if value > self.klaviyo.run_started_iso:
                latest_record = {**latest_record, key: self.klaviyo.run_started_iso}
            elif self._sorted:
                state = self._bookmark_state(context)
                current = state.get("replication_key_value")
                if current is not None and value < current:
                    return
                self.stats.position = value
                if isinstance(value, str) and self.state_partitioning_keys is None:
                    state["replication_key"] = key
                    state["replication_key_value"] = value
                    return
        super()._increment_stream_state(latest_record, context=context)

    @cached_property
    def _sorted(self) -> bool:
        return self.is_sorted

    def _bookmark_state(self, context: Any) -> dict[str, Any]:
        """The state dict of a partition, looked up once per partition rather than once per record."""
        cached = self._state_of
        if cached is not None and cached[0] is context and cached[1] is self.tap_state:
            return cached[2]
        state = self.get_context_state(context)
        self._state_of = (context, self.tap_state, state)
        return state

    # -- output ------------------------------------------------------------------------------------

    @cached_property
    def _plain_output(self) -> bool:
        """Records go out as they are: no stream map, no flattening, nothing deselected."""
        maps = self.stream_maps
        return (
            isinstance(self._tap.message_writer, SingerOutput)
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and not maps[0].flattening_enabled
            and maps[0].stream_alias == self.name
            and all(self.mask.values())
        )

    @override
    def _write_record_message(self, record: dict[str, Any]) -> None:
        self.stats.records += 1
        self.drift.check(record)  # issue 11: undeclared fields named once per stream
        if not self._plain_output:
            super()._write_record_message(record)
            return
        writer = self._tap.message_writer
        assert isinstance(writer, SingerOutput)
        writer.write_record(self.name, record, self._stream_version, self._extracted_at or utc_now())
        self.state_manager.is_flushed = False

    @override
    def _process_record(
        self,
        record: dict[str, Any],
        child_context: Any = None,
        partition_context: Any = None,
    ) -> None:
        if partition_context or self.child_streams:
            super()._process_record(record, child_context=child_context, partition_context=partition_context)


class SideloadedStream(KlaviyoStream):
    """A child whose records arrive in the parent's `included` (one request instead of a fan-out)."""

    #: Context key holding the parent id the included resources point to.
    parent_key: ClassVar[str] = ""
    state_partitioning_keys = ()

    @override
    def request_records(self, context: Mapping[str, Any] | None) -> Iterable[dict[str, Any]]:
        parent = self.parent_stream
        assert isinstance(parent, KlaviyoStream) and context is not None
        self._extracted_at = parent._extracted_at
        return parent.take_sideloaded(self.name, str(context[self.parent_key]))

    @property
    def parent_stream(self) -> KlaviyoStream:
        assert self.parent_stream_type is not None
        parent = self.klaviyo.streams[self.parent_stream_type.name]  # type: ignore[misc]
        assert isinstance(parent, KlaviyoStream)
        return parent


class DerivedStream(SideloadedStream):
    """Rows taken out of each parent record (a list inside it): no request of their own."""

    #: Explicit columns of the rows (JSON schema properties).
    columns: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    @override
    def build_schema(cls) -> dict[str, Any]:
        return {"type": "object", "properties": dict(cls.columns)}

    def derive(self, parent: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    @override
    def post_process(self, row: dict[str, Any], context: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        return row


@cache
def _load_schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def _key(context: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((context or {}).items()))


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
