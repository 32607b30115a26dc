"""What real Klaviyo responses carry beyond the vendored spec, so the emulator serves it too.

Kept apart from the tap's own `schema_overlay.json` on purpose: the emulator plays Klaviyo, and the tests
prove the tap's schemas cover what it serves (a full sync names no undeclared field).

- Profiles recorded on revision 2026-07-15 carry `anonymous_id` and `whatsapp_bsuid`, and
  `subscriptions.email.click_tracking` beside `open_tracking` (the data builder fills them).
- Flow messages carry a to-one `image` relationship.
- Before revision 2025-10-15 (klaviyo/openapi branches up to 2025-07-15), flow actions came as
  `action_type`, `status`, `settings`, `tracking_options`, `send_options`, `render_options` (+ `badge_options`
  from 2025-04-15) instead of `definition`: a request sending such a revision gets that shape.
"""

from __future__ import annotations

import functools
from typing import Any

#: Resource type -> attribute name -> OpenAPI schema, added to every shape of that type.
EXTRA_ATTRIBUTES: dict[str, dict[str, dict[str, Any]]] = {
    "profile": {
        "anonymous_id": {"type": "string", "nullable": True},
        "whatsapp_bsuid": {"type": "string", "nullable": True},
    },
}

#: Resource type -> to-one relationship name -> target type.
EXTRA_RELATIONSHIPS: dict[str, dict[str, str]] = {"flow-message": {"image": "image"}}

#: The first revision whose flow actions come as `definition` (FlowActionEncodedResponseObjectResource).
FLOW_ACTION_DEFINITION_SINCE = "2025-10-15"
#: The first revision with `badge_options` on flow actions.
BADGE_OPTIONS_SINCE = "2025-04-15"
LEGACY_FLOW_ACTION_ATTRIBUTES = (
    "action_type",
    "status",
    "created",
    "updated",
    "settings",
    "tracking_options",
    "send_options",
    "badge_options",
    "render_options",
)


@functools.lru_cache(maxsize=16)
def legacy_attribute_names(revision: str) -> tuple[str, ...] | None:
    """Flow-action attribute names a request on `revision` gets, or None for the current shape."""
    day = revision[:10]
    if not day or day >= FLOW_ACTION_DEFINITION_SINCE:
        return None
    if day < BADGE_OPTIONS_SINCE:
        return tuple(n for n in LEGACY_FLOW_ACTION_ATTRIBUTES if n != "badge_options")
    return LEGACY_FLOW_ACTION_ATTRIBUTES


def legacy_flow_action(kind: str, status: str, created: str, updated: str) -> dict[str, Any]:
    """The pre-2025-10-15 attributes of a flow action of `kind` (``send-email``, ``time-delay`` ...)."""
    email, sms = kind == "send-email", kind == "send-sms"
    sends = kind.startswith("send-")
    return {
        "action_type": kind.upper().replace("-", "_").replace("MOBILE_PUSH", "PUSH_NOTIFICATION"),
        "status": status,
        "created": created,
        "updated": updated,
        "settings": {"delay_seconds": 3600} if kind == "time-delay" else {},
        "tracking_options": (
            {"add_utm": False, "utm_params": [], "is_tracking_opens": True, "is_tracking_clicks": True}
            if email
            else ({"add_utm": False, "utm_params": []} if sms else None)
        ),
        "send_options": {"use_smart_sending": True, "is_transactional": False} if sends else None,
        "badge_options": None,
        "render_options": (
            {"shorten_links": True, "add_org_prefix": True, "add_info_link": True, "add_opt_out_language": False}
            if sms
            else None
        ),
    }


def click_tracking(stamp: str, k: int) -> dict[str, Any]:
    """`subscriptions.email.click_tracking` as real profiles carry it (the open_tracking shape)."""
    return {
        "consent": "GRANTED" if k % 4 else "DENIED",
        "consent_timestamp": stamp if k % 4 else None,
        "last_updated": stamp,
        "created_timestamp": stamp,
        "metadata": {"source": "preference_page"} if k % 10 == 0 else None,
        "can_receive": bool(k % 4),
        "valid_until": None,
    }
