"""The one UTC timestamp parser: records, state, settings, windows and reports read times through here.

`datetime.fromisoformat` differs across the Pythons the tap supports (3.10 rejects `Z`, fractions other than
3 or 6 digits, offsets without a colon), so this reads ISO-8601 itself, identically on every version: `Z` or
an offset (`+02:00`, `+0200`, `+02`), any number of fractional digits (kept to the microsecond), a space for
the `T`, date-only values (midnight UTC). A time without an offset is UTC, as Klaviyo means it. What cannot
be read is None: the caller decides (a record keeps it, with a warning), nobody gets a traceback.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

_ISO = re.compile(
    r"\s*(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
    r"(?:[Tt ]([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:[.,](\d+))?)?)?"
    r"\s*(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?\s*"
)

#: The form Klaviyo writes (UTC, `+00:00`, at most microseconds): recognised without capturing its parts.
_CANONICAL = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?\+00:00"
)


def parse_utc(value: Any) -> datetime | None:
    """An aware UTC datetime, or None when `value` is not a timestamp this parser can read."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        return aware.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if not isinstance(value, str):
        return None
    match = _ISO.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, _zulu, sign, off_h, off_m = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        offset = timedelta(0)
        if sign:
            offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
            if offset >= timedelta(hours=24):
                return None
            offset = -offset if sign == "-" else offset
        parsed = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
            tzinfo=timezone(offset),
        )
    except (ValueError, OverflowError):
        return None
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # year 1 less an offset, year 9999 plus one
        return None


def utc_iso(value: datetime) -> str:
    """Klaviyo's own timestamp form, in UTC: what filters take and what records carry."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat()


def normalize_timestamp(value: Any) -> str | None:
    """A record's timestamp in UTC `+00:00` form; None when it cannot be read (the caller warns).

    Cheap when the value already is UTC (the common case): the text is kept as Klaviyo wrote it.
    """
    if isinstance(value, str):
        if _CANONICAL.fullmatch(value) is not None:  # per record, several times: the cheap check first
            return value if value[8:10] <= "28" or parse_utc(value) is not None else None
        match = _ISO.fullmatch(value)
        if match is None or (match.group(3) > "28" and parse_utc(value) is None):  # the 30th of February
            return None
        if value.endswith("+00:00"):
            return value
        if value.endswith(("Z", "z")) and "T" in value:
            return value[:-1] + "+00:00"
    parsed = parse_utc(value)
    return utc_iso(parsed) if parsed is not None else None
