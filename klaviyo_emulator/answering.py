"""Answering one request once latency and faults are past: routing (404/405), authentication (401), scopes (403),
revision (400), rate limits (429), parameters and body (400), then the part that serves the operation."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from .api import Api, ApiError, RequestContext
from .auth import AuthFailure, AuthRegistry, Principal
from .campaigns import CampaignApi
from .catalog_jobs import BulkJobs
from .config import EmulatorConfig
from .contract import body_problems, query_problems, revision_problem
from .faults import FaultPlan
from .objects import ObjectApi
from .ratelimit import Decision, RateLimiter
from .replies import Reply, add_limit_headers, auth_error, dump, error_reply, throttled_reply
from .spec import Operation, RateLimit, get_spec
from .variance import Variance
from .writes import MAX_BODY_BYTES, WriteApi, too_large

#: (METHOD, spec template) -> a recorded response body served instead of the generated account.
Fixtures = dict[tuple[str, str], dict[str, Any]]


class Answerer:
    """Answers requests from the emulator's parts (the same objects the emulator exposes to tests)."""

    def __init__(
        self,
        config: EmulatorConfig,
        checks: tuple[AuthRegistry, RateLimiter, FaultPlan],
        fixtures: Fixtures,
        base_url: Callable[[], str],
        writes: WriteApi,
        writers: tuple[ObjectApi, CampaignApi, BulkJobs],
        api: Api,
    ) -> None:
        self.config = config
        self.auth, self.limiter, self.faults = checks
        self.fixtures = fixtures
        #: The emulator's own URL (links of a request that names no Host).
        self.base_url = base_url
        #: What serves an operation: writes first, then objects, campaigns and bulk jobs, then the read side.
        self.writes, self.writers, self.api = writes, writers, api
        self.bulk = writers[2]

    def answer(
        self,
        method: str,
        path: str,
        raw_query: str,
        pairs: list[tuple[str, str]],
        headers: dict[str, str],
        body: str | None,
        arrived: float | None = None,
    ) -> Reply:
        lower = {k.lower(): v for k, v in headers.items()}
        norm = path.rstrip("/") or "/"
        if norm == "/oauth/token":
            return self._token(method, lower, body)
        spec = get_spec()
        match = spec.match(method, path)
        if match is None:
            if spec.path_known(path):
                return error_reply(405, "method_not_allowed", "Method not allowed.", f'Method "{method}" not allowed.')
            return error_reply(404, "not_found", "Not found.", f"The path {path} was not found.")
        op, path_params = match
        path_params = {k: urllib.parse.unquote(v) for k, v in path_params.items()}  # "%24custom%3A..." ids
        admitted = self._admit(op, lower, pairs, arrived)
        if isinstance(admitted, Reply):
            return admitted
        decision = admitted
        problems = query_problems(op, pairs) + body_problems(op, body)
        if problems:
            first = problems[0]
            reply = error_reply(
                first.status,
                first.code,
                "Invalid input." if first.status == 400 else first.code,
                first.message,
                parameter=first.parameter,
                pointer=first.pointer,
            )
            return add_limit_headers(reply, decision)
        ctx = self._context(lower, path, raw_query, pairs, body, path_params)
        recorded = self._fixture_doc(op, ctx)
        if recorded is not None:
            return add_limit_headers(Reply(200, dump(recorded)), decision)
        try:
            status, doc = self._serve(op, ctx, body)
        except ApiError as err:
            reply = error_reply(
                err.status, err.code, err.title, err.detail, parameter=err.parameter, pointer=err.pointer
            )
            return add_limit_headers(reply, decision)
        if self.config.shape_variance and op.method == "GET" and status == 200:
            parsed = json.loads(doc if isinstance(doc, bytes) else dump(doc))  # a copy: the account stays as it is
            doc = Variance(self.config.shape_variance, self.config.seed).vary_document(parsed, op)
        payload = doc if isinstance(doc, bytes) else dump(doc)
        return add_limit_headers(Reply(status, payload), decision)

    def _token(self, method: str, lower: dict[str, str], body: str | None) -> Reply:
        """POST /oauth/token (no spec operation: the OAuth server's own endpoint)."""
        if method != "POST":
            return error_reply(405, "method_not_allowed", "Method not allowed.", f'Method "{method}" not allowed.')
        status, token_doc = self.auth.token_endpoint(
            lower.get("authorization"), lower.get("content-type", ""), body or ""
        )
        return Reply(status, dump(token_doc), "application/json")

    def _admit(
        self, op: Operation, lower: dict[str, str], pairs: list[tuple[str, str]], arrived: float | None
    ) -> Reply | Decision:
        """Authentication, scopes, revision and rate limits in turn: the first refusal, or the limiter's
        decision that lets the request through."""
        principal: Principal | None = None
        if op.scopes:
            auth = self.auth.authenticate(lower.get("authorization"))
            if isinstance(auth, AuthFailure):
                return self.with_limits(op, None, pairs, auth_error(auth))
            principal = auth
            if not principal.allows(op.scopes):
                return self.with_limits(
                    op,
                    principal,
                    pairs,
                    error_reply(
                        403,
                        "permission_denied",
                        "You do not have permission to perform this action.",
                        "You do not have permission to perform this action.",
                    ),
                )
        problem = revision_problem(lower.get("revision"), op)
        if problem is not None:
            return self.with_limits(
                op,
                principal,
                pairs,
                error_reply(400, "invalid", "Invalid input.", problem.message, parameter=problem.parameter),
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
        return decision

    def _context(
        self,
        lower: dict[str, str],
        path: str,
        raw_query: str,
        pairs: list[tuple[str, str]],
        body: str | None,
        path_params: dict[str, str],
    ) -> RequestContext:
        base = f"http://{lower['host']}" if lower.get("host") else self.base_url()
        parsed_body: Any = None
        if body:
            try:
                parsed_body = json.loads(body)
            except ValueError:
                parsed_body = None
        return RequestContext(
            base, path, raw_query, pairs, dict(pairs), parsed_body, path_params, revision=lower.get("revision") or ""
        )

    def _serve(self, op: Operation, ctx: RequestContext, body: str | None) -> tuple[int, dict[str, Any] | bytes]:
        """The part that serves the operation, after pending write jobs have settled."""
        self.writes.settle()
        self.bulk.settle()
        writer = next((w for w in self.writers if w.serves(op)), None)
        if self.writes.serves(op):
            return self.writes.handle(op, ctx, len(body.encode()) if body else 0)
        if writer is not None:
            if body and len(body.encode()) > MAX_BODY_BYTES:
                raise too_large(f"The request body is {len(body.encode())} bytes; at most 5 MB is accepted.")
            return writer.handle(op, ctx)
        return self.api.handle(op, ctx)

    def _fixture_doc(self, op: Operation, ctx: RequestContext) -> dict[str, Any] | None:
        body = self.fixtures.get((op.method.upper(), op.template))
        if body is None:
            return None
        doc = json.loads(json.dumps(body))
        if "links" in doc:
            query = f"?{ctx.raw_query}" if ctx.raw_query else ""
            doc["links"] = {"self": f"{ctx.base}{ctx.path}{query}", "next": None, "prev": None}
        return doc

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

    def with_limits(
        self, op: Operation, principal: Principal | None, pairs: list[tuple[str, str]], reply: Reply
    ) -> Reply:
        """A refusal's rate-limit headers (the limiter not consulted: the bucket's full allowance)."""
        _bucket, limit = self._bucket(op, principal, pairs)
        scale = self.config.rate_limit_scale
        steady = max(1, int(limit.steady * scale)) if scale > 0 else limit.steady
        reply.headers.setdefault("RateLimit-Limit", str(steady))
        reply.headers.setdefault("RateLimit-Remaining", str(steady))
        reply.headers.setdefault("RateLimit-Reset", str(max(1, 60 - int(time.time()) % 60)))
        return reply
