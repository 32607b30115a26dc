"""What every handler of the emulated API shares: the request's context, error answers, how the read side
serves (frozen, lazy), page sizes and the values a filter or sort field has on a record."""

from __future__ import annotations

import functools
import json
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .filters import path_values, to_micros
from .records import Rec
from .spec import Operation, get_spec

_DATETIME_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}T")
dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_MAX_RE = re.compile(r"maximum of (\d+)")


class ApiError(Exception):
    """An error answer (JSON:API error object fields)."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        parameter: str | None = None,
        pointer: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.parameter = parameter
        self.pointer = pointer


def not_found(detail: str = "Not found.") -> ApiError:
    return ApiError(404, "not_found", "Not found.", detail)


def invalid(detail: str, parameter: str | None = None, pointer: str | None = None) -> ApiError:
    return ApiError(400, "invalid", "Invalid input.", detail, parameter, pointer)


@dataclass
class RequestContext:
    """What a handler needs to know about the request beyond the operation."""

    base: str
    path: str
    raw_query: str
    pairs: list[tuple[str, str]]
    params: dict[str, str]
    body: Any = None
    path_params: dict[str, str] = field(default_factory=dict)
    revision: str = ""

    def url(self, pairs: Iterable[tuple[str, str]] | None = None) -> str:
        """Absolute URL on the emulator: the request path (with Klaviyo's trailing slash) + query."""
        path = self.path if self.path.endswith("/") else self.path + "/"
        if pairs is None:
            query = self.raw_query
        else:
            query = "&".join(f"{urllib.parse.quote(k, safe='')}={urllib.parse.quote(v, safe='')}" for k, v in pairs)
        return f"{self.base}{path}" + (f"?{query}" if query else "")

    def page_url(self, cursor: str) -> str:
        """``links.next``/``prev``: every original parameter plus ``page[cursor]``, percent-encoded."""
        pairs = [(k, v) for k, v in self.pairs if k != "page[cursor]"]
        return self.url([*pairs, ("page[cursor]", cursor)])


@functools.lru_cache(maxsize=1)
def additional_only() -> dict[str, frozenset[str]]:
    """Attributes returned only when asked via ``additional-fields[type]`` (e.g. profile subscriptions)."""
    out: dict[str, set[str]] = {}
    for op in get_spec().operations:
        for name, values in op.list_enums.items():
            if name.startswith("additional-fields["):
                out.setdefault(name[len("additional-fields[") : -1], set()).update(values)
    return {k: frozenset(v) for k, v in out.items()}


def fixed_page_size(op: Operation) -> int:
    """Page size of endpoints with a cursor but no ``page[size]`` (metrics: 200, from the description)."""
    if op.page_size is not None:
        return op.page_size[0]
    m = _MAX_RE.search(op.raw.get("description", ""))
    return int(m.group(1)) if m else 100


def field_values(rec: Rec, name: str, dynamic: Mapping[str, Callable[[Rec], Any]]) -> list[Any]:
    """Values a filter/sort field has on a record: attributes, dotted paths, relationship ids, extras."""
    getter = dynamic.get(name)
    if getter is not None:
        return [getter(rec)]
    if name in ("id", "ids") or (name == "profile_id" and rec.type == "profile"):
        return [rec.id]
    if name == "messages.channel":
        return [rec.extra.get("channel")]
    if name in rec.extra:
        return [rec.extra[name]]
    if name in rec.attrs:
        return [rec.attrs[name]]
    if "." in name:
        head, tail = name.split(".", 1)
        if tail == "id":
            for rel in (head, head + "s", head[:-1] + "ies"):
                if rel in rec.rels:
                    value = rec.rels[rel]
                    return list(value) if isinstance(value, list) else [value]
        return path_values(rec.attrs, name)
    if name.endswith("_id") and name[:-3] in rec.rels:
        return [rec.rels[name[:-3]]]
    return []


def sortable(value: Any) -> Any:
    if isinstance(value, str) and _DATETIME_PREFIX.match(value):
        micros = to_micros(value)
        if micros is not None:
            return micros
    if isinstance(value, (dict, list)):
        return str(value)
    return value


@dataclass
class ReadModes:
    """How the read side serves, shared by its parts (tests and benchmarks flip them through ``Api``)."""

    #: Filtered, sorted collections kept by (path, filter, sort): for an account nothing changes (benchmarks),
    #: so a 100,000-profile collection is filtered and sorted once, not once per page.
    frozen: bool = False
    #: Serve a lazy account's profiles and memberships by position, and events from their computed pieces
    #: (off: from materialised records and the generic renderer, as the tests that prove both give the same
    #: pages do).
    lazy: bool = True
