"""The HTTP server: auth, scopes, revision, rate limits, validation, faults and latency around :class:`Api`.

Order of checks per request: latency, forced/injected faults, routing (404/405), authentication (401),
scopes (403), revision (400), rate limits (429), parameters and body (400), then the answer.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .api import Api, ApiError, RequestContext
from .auth import DEMO_API_KEY, AuthFailure, AuthRegistry, Principal
from .campaigns import CampaignApi
from .catalog_jobs import BulkJobs
from .contract import body_problems, query_problems, revision_problem
from .data import AccountData
from .faults import FAULT_KINDS, HTML_502, FaultPlan, ForcedResponse, fault_label, server_error
from .objects import TEMPLATE_CAP, ObjectApi
from .ratelimit import Decision, RateLimiter
from .spec import Operation, RateLimit, get_spec
from .variance import Variance
from .writes import MAX_BODY_BYTES, WriteApi, empty_account, too_large

JSON_API = "application/vnd.api+json"
THROTTLE_DOCS = "https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling#rate-limits"


@dataclass
class EmulatorConfig:
    """Run-time knobs (mutable while the server runs: tests flip faults, latency and limits)."""

    host: str = "127.0.0.1"
    port: int = 0
    size: str = "tiny"
    seed: int = 1
    rate_limit_scale: float = 1.0
    retry_after_omit_rate: float = 0.0
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    timeout_delay_s: float = 5.0
    daily_limits: bool = True
    #: Resource type -> attributes served on every such resource beyond the spec (e.g. a field Klaviyo
    #: has just started sending), to test that the tap names what no schema declares.
    extra_attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: A new account holding nothing but the account record (what target-klaviyo writes into).
    empty: bool = False
    #: Seconds (on the emulator's clock) before a bulk write job is applied.
    job_delay_s: float = 2.0
    #: Share of injected 5xx/timeout/drop faults on writes that come after the write was applied.
    applied_fault_share: float = 0.5
    #: Share of what the spec leaves open that GET answers vary (omitted, nulled, unlisted fields and enum
    #: values, partial relationships: klaviyo_emulator/variance.py), by `seed`; 0 serves every attribute.
    shape_variance: float = 0.0
    #: Templates an account may hold before POST /api/templates refuses (Klaviyo: 1,000).
    template_cap: int = TEMPLATE_CAP


@dataclass
class RequestLogEntry:
    """One request as the emulator saw it (secrets redacted)."""

    time: float
    method: str
    path: str
    template: str | None
    query: list[tuple[str, str]]
    raw_query: str
    headers: dict[str, str]
    body: str | None
    status: int = 0
    fault: str | None = None


class RequestLog(list[RequestLogEntry]):
    """A list of :class:`RequestLogEntry` that server threads append to safely."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def append(self, entry: RequestLogEntry) -> None:
        with self._lock:
            super().append(entry)

    def clear(self) -> None:
        with self._lock:
            super().clear()

    def snapshot(self) -> list[RequestLogEntry]:
        with self._lock:
            return list(self)


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = JSON_API
    headers: dict[str, str] = field(default_factory=dict)
    template: str | None = None
    fault: str | None = None
    no_response: str | None = None  # "drop" / "timeout"


def error_doc(
    status: int,
    code: str,
    title: str,
    detail: str,
    parameter: str | None = None,
    pointer: str | None = None,
    links: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Klaviyo's JSON:API error document."""
    source = {"parameter": parameter} if parameter else {"pointer": pointer or "/data"}
    return {
        "errors": [
            {
                "id": str(uuid.uuid4()),
                "status": status,
                "code": code,
                "title": title,
                "detail": detail,
                "source": source,
                "links": links or {},
                "meta": {},
            }
        ]
    }


def _dump(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _error(status: int, code: str, title: str, detail: str, **kw: Any) -> _Reply:
    return _Reply(status, _dump(error_doc(status, code, title, detail, **kw)))


def throttled_reply(retry_after: int, include_header: bool) -> _Reply:
    unit = "second" if retry_after == 1 else "seconds"
    detail = f"Request was throttled. Expected available in {retry_after} {unit}."
    reply = _error(429, "throttled", "Request was throttled.", detail, pointer="/data", links={"type": THROTTLE_DOCS})
    if include_header:
        reply.headers["Retry-After"] = str(retry_after)
    return reply


class Emulator:
    """The Klaviyo API emulator: ``with Emulator(EmulatorConfig(...)) as emu: ... emu.base_url``."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        account: AccountData | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.account = account or AccountData(self.config.size, self.config.seed)
        if self.config.empty:
            empty_account(self.account)
        self.writes = WriteApi(self.account, clock, self.config.job_delay_s)
        #: Templates, segments, images, lists; campaign drafts; catalog and suppression jobs.
        self.objects = ObjectApi(self.account, self.config.template_cap)
        self.campaigns = CampaignApi(self.account)
        self.bulk = BulkJobs(self.account, self.writes.book, clock, self.config.job_delay_s)
        self.auth = AuthRegistry()
        self.limiter = RateLimiter()
        self.faults = FaultPlan(self.config.seed)
        self.api = Api(self.account, self.config.extra_attributes)
        self.requests = RequestLog()
        #: (METHOD, spec template) -> a recorded response body served instead of the generated account.
        self.fixtures: dict[tuple[str, str], dict[str, Any]] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Emulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.config.host, self.config.port), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="klaviyo-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        server.join_handlers(timeout=5.0)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emulator is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        host = self.config.host if self.config.host not in ("0.0.0.0", "") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    # ---- test helpers ----------------------------------------------------------------------------
    def add_api_key(self, key: str, scopes: list[str] | None = None) -> None:
        """Register a private key; ``scopes=None`` grants every scope."""
        self.auth.add_api_key(key, scopes)

    def add_oauth_client(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        expires_in: int = 3600,
        rotate: bool = True,
        scopes: list[str] | None = None,
        grace_uses: int = 0,
    ) -> None:
        self.auth.add_oauth_client(client_id, client_secret, refresh_token, expires_in, rotate, scopes, grace_uses)

    def force(self, path_prefix: str, responses: list[ForcedResponse], method: str | None = "GET") -> None:
        """Serve ``responses`` (in order) to the next requests whose path starts with ``path_prefix``."""
        self.faults.force(path_prefix, responses, method)

    def serve_fixture(self, template: str, body: dict[str, Any], method: str = "GET") -> None:
        """Answer `method template` (e.g. ``/api/templates``) with a recorded body, after the usual checks.

        A recording is one page of some other account: its `links` point there, so they are replaced by
        this request's own `self` and no `next` (the only thing the emulator fills in: one page, no cursor).
        """
        self.fixtures[(method.upper(), template)] = body

    def _fixture_doc(self, op: Operation, ctx: RequestContext) -> dict[str, Any] | None:
        body = self.fixtures.get((op.method.upper(), op.template))
        if body is None:
            return None
        doc = json.loads(json.dumps(body))
        if "links" in doc:
            query = f"?{ctx.raw_query}" if ctx.raw_query else ""
            doc["links"] = {"self": f"{ctx.base}{ctx.path}{query}", "next": None, "prev": None}
        return doc

    def clear_log(self) -> None:
        self.requests.clear()

    def reset_rate_limits(self) -> None:
        self.limiter.reset()

    def wait(self, seconds: float) -> bool:
        """Sleep unless the emulator stops first (True when stopping)."""
        return self._stopping.wait(seconds) if seconds > 0 else self._stopping.is_set()

    # ---- request processing (called from handler threads) ----------------------------------------
    def process(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[_Reply, RequestLogEntry]:
        split = urllib.parse.urlsplit(raw_path)
        path, raw_query = split.path, split.query
        pairs = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
        body_text = body.decode("utf-8", "replace") if body else None
        entry = RequestLogEntry(
            time.monotonic(),
            method,
            path,
            None,
            pairs,
            raw_query,
            _redact_headers(headers),
            _redact_body(path, body_text),
        )
        cfg = self.config
        delay = cfg.latency_ms + self.faults.jitter(cfg.latency_jitter_ms)
        # Klaviyo counts a request against its limits when it arrives (half the round trip after it left),
        # whatever this process's threads are busy with while the answer is made.
        arrived = self.limiter.now() + delay / 2000
        if delay > 0:
            self.wait(delay / 1000)
        match = get_spec().match(method, path)
        entry.template = match[0].template if match else None
        forced = self.faults.take_forced(method, path)
        if forced is not None:
            reply = self._forced_reply(forced, method, raw_path, path, raw_query, pairs, headers, body_text)
            reply.fault = fault_label(forced)
            return reply, entry
        kind = self.faults.roll(cfg.fault_rate, cfg.fault_kinds)
        if kind is not None and kind != "truncated" and method != "GET" and self.faults.chance(cfg.applied_fault_share):
            self._answer(method, path, raw_query, pairs, headers, body_text, arrived)  # applied, the answer lost
            reply = self._fault_reply(kind)
            reply.fault = f"{kind}-applied"
            return reply, entry
        if kind is not None and kind != "truncated":
            reply = self._fault_reply(kind)
            return reply, entry
        reply = self._answer(method, path, raw_query, pairs, headers, body_text, arrived)
        if kind == "truncated":
            reply = _truncate(reply)
            reply.fault = "truncated"
        return reply, entry

    def _fault_reply(self, kind: str) -> _Reply:
        if kind in ("drop", "timeout"):
            return _Reply(0, no_response=kind, fault=kind)
        if kind == "502_html":
            return _Reply(502, HTML_502.encode(), "text/html", fault=kind)
        status = int(kind)
        code, title, detail = server_error(status)
        reply = _error(status, code, title, detail)
        reply.fault = kind
        return reply

    def _forced_reply(
        self,
        forced: ForcedResponse,
        method: str,
        raw_path: str,
        path: str,
        raw_query: str,
        pairs: list[tuple[str, str]],
        headers: dict[str, str],
        body: str | None,
    ) -> _Reply:
        if forced.applied:
            self._answer(method, path, raw_query, pairs, headers, body)  # done, then its answer is lost
        if forced.kind in ("drop", "timeout", "502_html"):
            return self._fault_reply(forced.kind)
        if forced.kind == "truncated":
            return _truncate(self._answer(method, path, raw_query, pairs, headers, body))
        if forced.status == 429 and forced.body is None:
            reply = throttled_reply(forced.retry_after or 1, forced.retry_after is not None)
        elif forced.body is None and forced.status >= 400:
            code, title, detail = (
                server_error(forced.status) if forced.status >= 500 else ("invalid", "Invalid input.", "Forced error.")
            )
            reply = _error(forced.status, code, title, detail)
        elif isinstance(forced.body, (bytes, str)):
            raw = forced.body.encode() if isinstance(forced.body, str) else forced.body
            reply = _Reply(forced.status, raw)
        else:
            reply = _Reply(forced.status, _dump(forced.body if forced.body is not None else {}))
        if forced.retry_after is not None:
            reply.headers["Retry-After"] = str(forced.retry_after)
        reply.headers.update(forced.headers)
        return reply

    def _answer(
        self,
        method: str,
        path: str,
        raw_query: str,
        pairs: list[tuple[str, str]],
        headers: dict[str, str],
        body: str | None,
        arrived: float | None = None,
    ) -> _Reply:
        lower = {k.lower(): v for k, v in headers.items()}
        norm = path.rstrip("/") or "/"
        if norm == "/oauth/token":
            if method != "POST":
                return _error(405, "method_not_allowed", "Method not allowed.", f'Method "{method}" not allowed.')
            status, token_doc = self.auth.token_endpoint(
                lower.get("authorization"), lower.get("content-type", ""), body or ""
            )
            return _Reply(status, _dump(token_doc), "application/json")
        spec = get_spec()
        match = spec.match(method, path)
        if match is None:
            if spec.path_known(path):
                return _error(405, "method_not_allowed", "Method not allowed.", f'Method "{method}" not allowed.')
            return _error(404, "not_found", "Not found.", f"The path {path} was not found.")
        op, path_params = match
        path_params = {k: urllib.parse.unquote(v) for k, v in path_params.items()}  # "%24custom%3A..." ids
        principal: Principal | None = None
        if op.scopes:
            auth = self.auth.authenticate(lower.get("authorization"))
            if isinstance(auth, AuthFailure):
                return self._with_limits(op, None, pairs, _auth_error(auth))
            principal = auth
            if not principal.allows(op.scopes):
                return self._with_limits(
                    op,
                    principal,
                    pairs,
                    _error(
                        403,
                        "permission_denied",
                        "You do not have permission to perform this action.",
                        "You do not have permission to perform this action.",
                    ),
                )
        problem = revision_problem(lower.get("revision"), op)
        if problem is not None:
            return self._with_limits(
                op,
                principal,
                pairs,
                _error(400, "invalid", "Invalid input.", problem.message, parameter=problem.parameter),
            )
        bucket, limit = self._bucket(op, principal, pairs)
        decision = self.limiter.check(
            bucket, limit, self.config.rate_limit_scale, self.config.daily_limits, arrived=arrived
        )
        if not decision.allowed:
            omit = self.faults.chance(self.config.retry_after_omit_rate)
            reply = throttled_reply(decision.retry_after, not omit)
            reply.fault = "429-limit"
            return reply
        problems = query_problems(op, pairs) + body_problems(op, body)
        if problems:
            first = problems[0]
            reply = _error(
                first.status,
                first.code,
                "Invalid input." if first.status == 400 else first.code,
                first.message,
                parameter=first.parameter,
                pointer=first.pointer,
            )
            return _add_limit_headers(reply, decision)
        base = f"http://{lower['host']}" if lower.get("host") else self.base_url
        params = dict(pairs)
        parsed_body: Any = None
        if body:
            try:
                parsed_body = json.loads(body)
            except ValueError:
                parsed_body = None
        ctx = RequestContext(
            base, path, raw_query, pairs, params, parsed_body, path_params, revision=lower.get("revision") or ""
        )
        recorded = self._fixture_doc(op, ctx)
        if recorded is not None:
            return _add_limit_headers(_Reply(200, _dump(recorded)), decision)
        try:
            self.writes.settle()
            self.bulk.settle()
            writer = next((w for w in (self.objects, self.campaigns, self.bulk) if w.serves(op)), None)
            if self.writes.serves(op):
                status, doc = self.writes.handle(op, ctx, len(body.encode()) if body else 0)
            elif writer is not None:
                if body and len(body.encode()) > MAX_BODY_BYTES:
                    raise too_large(f"The request body is {len(body.encode())} bytes; at most 5 MB is accepted.")
                status, doc = writer.handle(op, ctx)
            else:
                status, doc = self.api.handle(op, ctx)
        except ApiError as err:
            reply = _error(err.status, err.code, err.title, err.detail, parameter=err.parameter, pointer=err.pointer)
            return _add_limit_headers(reply, decision)
        if self.config.shape_variance and op.method == "GET" and status == 200:
            parsed = json.loads(doc if isinstance(doc, bytes) else _dump(doc))  # a copy: the account stays as it is
            doc = Variance(self.config.shape_variance, self.config.seed).vary_document(parsed, op)
        payload = doc if isinstance(doc, bytes) else _dump(doc)
        return _add_limit_headers(_Reply(status, payload), decision)

    def _bucket(
        self, op: Operation, principal: Principal | None, pairs: list[tuple[str, str]]
    ) -> tuple[str, RateLimit]:
        quota = principal.quota if principal is not None else "anonymous"
        bucket = f"{quota}|{op.method} {op.template}"
        values = dict(pairs)
        for override in op.rate_overrides:
            given = values.get(override.param, "").split(",")
            if any(v == override.value or v.rstrip("s") == override.value for v in given if v):
                return f"{bucket}|{override.param}={override.value}", override.limit
        return bucket, op.rate

    def _with_limits(
        self, op: Operation, principal: Principal | None, pairs: list[tuple[str, str]], reply: _Reply
    ) -> _Reply:
        _bucket, limit = self._bucket(op, principal, pairs)
        scale = self.config.rate_limit_scale
        steady = max(1, int(limit.steady * scale)) if scale > 0 else limit.steady
        reply.headers.setdefault("RateLimit-Limit", str(steady))
        reply.headers.setdefault("RateLimit-Remaining", str(steady))
        reply.headers.setdefault("RateLimit-Reset", str(max(1, 60 - int(time.time()) % 60)))
        return reply


def _add_limit_headers(reply: _Reply, decision: Decision) -> _Reply:
    reply.headers["RateLimit-Limit"] = str(decision.limit)
    reply.headers["RateLimit-Remaining"] = str(decision.remaining)
    reply.headers["RateLimit-Reset"] = str(decision.reset)
    return reply


def _auth_error(failure: AuthFailure) -> _Reply:
    if failure.code == "not_authenticated":
        text = "Authentication credentials were not provided."
        return _error(401, "not_authenticated", text, text)
    text = "Incorrect authentication credentials."
    return _error(401, "authentication_failed", text, text)


def _truncate(reply: _Reply) -> _Reply:
    cut = reply.body[: len(reply.body) // 2]
    return _Reply(200, cut, reply.content_type, dict(reply.headers), reply.template, "truncated")


def _redact_headers(headers: dict[str, str]) -> dict[str, str]:
    out = {}
    for key, value in headers.items():
        if key.lower() == "authorization":
            scheme = value.split(" ", 1)[0] if value else ""
            out[key] = f"{scheme} ***" if scheme else "***"
        else:
            out[key] = value
    return out


def _redact_body(path: str, body: str | None) -> str | None:
    if body is None or not path.rstrip("/").endswith("/oauth/token"):
        return body
    pairs = urllib.parse.parse_qsl(body, keep_blank_values=True)
    secret_names = {"refresh_token", "client_secret", "code", "code_verifier", "access_token"}
    return "&".join(f"{k}={'***' if k in secret_names else v}" for k, v in pairs)


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that can close idle keep-alive connections and join its handler threads."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128  # concurrent clients (benchmarks) must not be refused at the listen backlog

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], emulator: Emulator) -> None:
        self.emulator = emulator
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._handler_threads: set[threading.Thread] = set()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._connections.add(request)
        thread = threading.Thread(
            target=self._run, args=(request, client_address), daemon=True, name="klaviyo-emulator-conn"
        )
        with self._conn_lock:
            self._handler_threads.add(thread)
        thread.start()

    def _run(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._connections.discard(request)
                self._handler_threads.discard(threading.current_thread())

    def close_connections(self) -> None:
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def join_handlers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._conn_lock:
            threads = list(self._handler_threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Client disconnects (e.g. after a read timeout) are routine here; keep the console quiet.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "klaviyo-emulator"
    sys_version = ""
    wbufsize = -1  # buffer headers and body into one write (flushed after each request)

    def setup(self) -> None:
        super().setup()
        # Without this, keep-alive clients wait ~40 ms per response (Nagle + delayed ACK).
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        emulator = self.server.emulator
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else None
        headers = {k: v for k, v in self.headers.items()}
        try:
            reply, entry = emulator.process(self.command, self.path, headers, body)
        except Exception as exc:  # an emulator bug: answer 500 so the client sees it, and log it
            reply = _error(500, "error", "A server error occurred.", f"Emulator error: {exc!r}")
            reply.fault = "emulator-error"
            split = urllib.parse.urlsplit(self.path)
            entry = RequestLogEntry(
                time.monotonic(),
                self.command,
                split.path,
                None,
                urllib.parse.parse_qsl(split.query),
                split.query,
                _redact_headers(headers),
                None,
            )
        entry.status = reply.status
        entry.fault = reply.fault
        emulator.requests.append(entry)
        if reply.no_response is not None:
            if reply.no_response == "timeout":
                emulator.wait(emulator.config.timeout_delay_s)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


__all__ = [
    "DEMO_API_KEY",
    "Emulator",
    "EmulatorConfig",
    "ForcedResponse",
    "RequestLogEntry",
]
