"""The emulator's answers as bytes: Klaviyo's JSON:API error documents, throttling, rate-limit headers."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from .auth import AuthFailure
from .ratelimit import Decision

JSON_API = "application/vnd.api+json"
THROTTLE_DOCS = "https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling#rate-limits"


@dataclass
class Reply:
    """One answer: status, body and headers, or no response at all (a dropped or timed-out connection)."""

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


def dump(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def error_reply(status: int, code: str, title: str, detail: str, **kw: Any) -> Reply:
    return Reply(status, dump(error_doc(status, code, title, detail, **kw)))


def throttled_reply(retry_after: int, include_header: bool) -> Reply:
    unit = "second" if retry_after == 1 else "seconds"
    detail = f"Request was throttled. Expected available in {retry_after} {unit}."
    reply = error_reply(
        429, "throttled", "Request was throttled.", detail, pointer="/data", links={"type": THROTTLE_DOCS}
    )
    if include_header:
        reply.headers["Retry-After"] = str(retry_after)
    return reply


def add_limit_headers(reply: Reply, decision: Decision) -> Reply:
    reply.headers["RateLimit-Limit"] = str(decision.limit)
    reply.headers["RateLimit-Remaining"] = str(decision.remaining)
    reply.headers["RateLimit-Reset"] = str(decision.reset)
    return reply


def auth_error(failure: AuthFailure) -> Reply:
    if failure.code == "not_authenticated":
        text = "Authentication credentials were not provided."
        return error_reply(401, "not_authenticated", text, text)
    text = "Incorrect authentication credentials."
    return error_reply(401, "authentication_failed", text, text)


def truncate(reply: Reply) -> Reply:
    cut = reply.body[: len(reply.body) // 2]
    return Reply(200, cut, reply.content_type, dict(reply.headers), reply.template, "truncated")
