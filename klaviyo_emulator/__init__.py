"""Offline Klaviyo API emulator (revision 2026-07-15) for tests, demos and benchmarks.

Usage::

    from klaviyo_emulator import Emulator, EmulatorConfig, DEMO_API_KEY

    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0)) as emu:
        requests.get(f"{emu.base_url}/api/accounts", headers={
            "Authorization": f"Klaviyo-API-Key {DEMO_API_KEY}", "revision": "2026-07-15"})

Every rule it enforces (paths, parameters, filters, scopes, rate limits, response shapes) is read at run
time from the vendored spec ``klaviyo_core/openapi/stable-2026-07-15.json``.
"""

from __future__ import annotations

from .auth import DEMO_API_KEY
from .contract import match_operation, validate_request
from .data import AccountData
from .faults import FAULT_KINDS, ForcedResponse
from .server import Emulator, EmulatorConfig, RequestLogEntry
from .spec import REVISION

__all__ = [
    "DEMO_API_KEY",
    "FAULT_KINDS",
    "REVISION",
    "AccountData",
    "Emulator",
    "EmulatorConfig",
    "ForcedResponse",
    "RequestLogEntry",
    "match_operation",
    "validate_request",
]
