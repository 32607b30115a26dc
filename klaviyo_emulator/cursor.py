"""Opaque page cursors: base64 of a small JSON document holding the sort key of a page edge.

Cursors encode a position in the stably sorted result (the sort key of the last row served, ties broken
by id), not an offset, so they stay valid when records are appended while a client pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def encode_cursor(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(text: str) -> dict[str, Any] | None:
    """The cursor's payload, or None when it is not one of ours."""
    try:
        padded = text + "=" * (-len(text) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(value, dict) or not ({"a", "b", "o"} & set(value)):
        return None
    return value
