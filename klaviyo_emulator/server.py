"""The HTTP server: auth, scopes, revision, rate limits, validation, faults and latency around :class:`Api`.

Order of checks per request: latency, forced/injected faults, routing (404/405), authentication (401),
scopes (403), revision (400), rate limits (429), parameters and body (400), then the answer.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .answering import Answerer, Fixtures
from .api import Api
from .auth import DEMO_API_KEY, AuthRegistry
from .campaigns import CampaignApi
from .catalog_jobs import BulkJobs
from .config import EmulatorConfig
from .data import AccountData
from .faults import HTML_502, FaultPlan, ForcedResponse, fault_label, server_error
from .objects import ObjectApi
from .ratelimit import RateLimiter
from .replies import Reply, dump, error_reply, throttled_reply, truncate
from .spec import get_spec
from .writes import WriteApi, empty_account


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
        limiter = RateLimiter()
        self.faults = FaultPlan(self.config.seed)
        self.api = Api(self.account, self.config.extra_attributes)
        self.requests = RequestLog()
        #: (METHOD, spec template) -> a recorded response body served instead of the generated account.
        self.fixtures: Fixtures = {}
        #: Answers what the faults let through (klaviyo_emulator/answering.py), from the parts above.
        self.answerer = Answerer(
            self.config,
            (self.auth, limiter, self.faults),
            self.fixtures,
            lambda: self.base_url,
            self.writes,
            (self.objects, self.campaigns, self.bulk),
            self.api,
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def limiter(self) -> RateLimiter:
        """The rate limiter requests are counted against (tests put in one on a fake clock)."""
        return self.answerer.limiter

    @limiter.setter
    def limiter(self, limiter: RateLimiter) -> None:
        self.answerer.limiter = limiter

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
    ) -> tuple[Reply, RequestLogEntry]:
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
            self.answerer.answer(
                method, path, raw_query, pairs, headers, body_text, arrived
            )  # applied, the answer lost
            reply = self._fault_reply(kind)
            reply.fault = f"{kind}-applied"
            return reply, entry
        if kind is not None and kind != "truncated":
            reply = self._fault_reply(kind)
            return reply, entry
        reply = self.answerer.answer(method, path, raw_query, pairs, headers, body_text, arrived)
        if kind == "truncated":
            reply = truncate(reply)
            reply.fault = "truncated"
        return reply, entry

    def _fault_reply(self, kind: str) -> Reply:
        if kind in ("drop", "timeout"):
            return Reply(0, no_response=kind, fault=kind)
        if kind == "502_html":
            return Reply(502, HTML_502.encode(), "text/html", fault=kind)
        status = int(kind)
        code, title, detail = server_error(status)
        reply = error_reply(status, code, title, detail)
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
    ) -> Reply:
        if forced.applied:
            self.answerer.answer(method, path, raw_query, pairs, headers, body)  # done, then its answer is lost
        if forced.kind in ("drop", "timeout", "502_html"):
            return self._fault_reply(forced.kind)
        if forced.kind == "truncated":
            return truncate(self.answerer.answer(method, path, raw_query, pairs, headers, body))
        if forced.status == 429 and forced.body is None:
            reply = throttled_reply(forced.retry_after or 1, forced.retry_after is not None)
        elif forced.body is None and forced.status >= 400:
            code, title, detail = (
                server_error(forced.status) if forced.status >= 500 else ("invalid", "Invalid input.", "Forced error.")
            )
            reply = error_reply(forced.status, code, title, detail)
        elif isinstance(forced.body, (bytes, str)):
            raw = forced.body.encode() if isinstance(forced.body, str) else forced.body
            reply = Reply(forced.status, raw)
        else:
            reply = Reply(forced.status, dump(forced.body if forced.body is not None else {}))
        if forced.retry_after is not None:
            reply.headers["Retry-After"] = str(forced.retry_after)
        reply.headers.update(forced.headers)
        return reply


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

    def handleerror_reply(self, request: Any, client_address: Any) -> None:
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
            reply = error_reply(500, "error", "A server error occurred.", f"Emulator error: {exc!r}")
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
