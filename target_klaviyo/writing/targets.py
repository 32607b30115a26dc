"""Which list a row names (list_id, or list_name created when absent) and which profile (profile_id or identifiers)."""

from __future__ import annotations

from typing import Any

from target_klaviyo.writing.lists import Lists
from target_klaviyo.writing.rows import RowError, identity


def list_of(row: dict[str, Any], lists: Lists, what: str, *, create: bool) -> str | None:
    """The list id a row names (None: a dry run would create it, or the row names none and may)."""
    if row.get("list_id"):
        given = str(row["list_id"])
        if not lists.exists(given, what):
            raise RowError(f"list_id {given} is not a list of this account")
        return given
    name = str(row.get("list_name") or "").strip()
    if not name:
        return None
    if not create:
        found = lists.find(name, what)
        if found is None:
            raise RowError(f"no list is named {name!r}")
        return found
    list_id, _created = lists.ensure(name, what)
    return list_id


def profile_key(row: dict[str, Any]) -> dict[str, str]:
    """The row's profile: its profile_id, else its identifiers (checked)."""
    if row.get("profile_id"):
        return {"profile_id": str(row["profile_id"])}
    return identity(row)
