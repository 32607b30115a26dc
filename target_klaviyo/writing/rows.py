"""Checks and conversions of input rows, shared by the sinks (nothing here sends a request)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import Any, TypeVar

from klaviyo_core.documents import encode_document
from klaviyo_core.timestamps import parse_utc, utc_iso

T = TypeVar("T")

IDENTIFIERS = ("email", "phone_number", "external_id")
EMAIL = re.compile(r"^[^@\s\"]+@[^@\s\"]+\.[A-Za-z]{2,}$")
PHONE = re.compile(r"^\+[1-9]\d{6,14}$")
MAX_BODY_BYTES = 5 * 1024 * 1024
#: Room left in a body for the JSON:API envelope around the rows.
ENVELOPE_BYTES = 4096


class RowError(ValueError):
    """A row Klaviyo would refuse, with the reason."""


def size_of(value: Any) -> int:
    return len(encode_document(value))


def iso(value: Any) -> str | None:
    """A date-time as ISO 8601 in UTC (the core's one parser; the SDK hands parsed datetimes to sinks), else
    None for an empty value; RowError for one that is not a date-time."""
    if value is None or value == "":
        return None
    parsed = parse_utc(value)
    if parsed is None:
        raise RowError(f"{value!r} is not an ISO 8601 date-time")
    return utc_iso(parsed)


def identity(row: dict[str, Any], names: tuple[str, ...] = IDENTIFIERS) -> dict[str, str]:
    """The row's profile identifiers (checked): at least one of `names`, each well formed."""
    found = {name: str(row[name]).strip() for name in names if row.get(name) not in (None, "")}
    if not found:
        raise RowError(f"no profile identifier: give one of {', '.join(names)}")
    email = found.get("email")
    if email is not None and not EMAIL.match(email):
        raise RowError(f"email {email!r} is not a valid address")
    phone = found.get("phone_number")
    if phone is not None and not PHONE.match(phone):
        raise RowError(f"phone_number {phone!r} is not in E.164 format (+ and country code)")
    return found


def chunks(items: Iterable[T], rows: int, max_bytes: int, size: Any = size_of) -> Iterator[list[T]]:
    """Consecutive batches of at most `rows` items and `max_bytes` of JSON each."""
    batch: list[T] = []
    used = ENVELOPE_BYTES
    for item in items:
        item_size = size(item) + 1
        if batch and (len(batch) >= rows or used + item_size > max_bytes):
            yield batch
            batch, used = [], ENVELOPE_BYTES
        batch.append(item)
        used += item_size
    if batch:
        yield batch


def quoted(values: Iterable[str]) -> str:
    """A filter's list of strings: `["a","b"]` (values with a double quote never get here)."""
    return "[" + ",".join(f'"{v}"' for v in values) + "]"


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its date-times as ISO text (the SDK parses the input schema's top-level date-time fields, and
    only those); a row without any is returned as it is, uncopied."""
    if not any(isinstance(value, datetime | date) for value in row.values()):
        return row
    return {key: iso(value) if isinstance(value, datetime | date) else value for key, value in row.items()}
