"""The emulator's run-time knobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .faults import FAULT_KINDS
from .objects import TEMPLATE_CAP


@dataclass
class EmulatorConfig:
    """Run-time knobs (mutable while the server runs: tests flip faults, latency and limits)."""

    host: str = "127.0.0.1"
    port: int = 0
    size: str = "tiny"
    seed: int = 1
    rate_limit_scale: float = 1.0
    retry_after_omit_rate: float = 0.0
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    timeout_delay_s: float = 5.0
    daily_limits: bool = True
    #: Resource type -> attributes served on every such resource beyond the spec (e.g. a field Klaviyo
    #: has just started sending), to test that the tap names what no schema declares.
    extra_attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: A new account holding nothing but the account record (what target-klaviyo writes into).
    empty: bool = False
    #: Seconds (on the emulator's clock) before a bulk write job is applied.
    job_delay_s: float = 2.0
    #: Share of injected 5xx/timeout/drop faults on writes that come after the write was applied.
    applied_fault_share: float = 0.5
    #: Share of what the spec leaves open that GET answers vary (omitted, nulled, unlisted fields and enum
    #: values, partial relationships: klaviyo_emulator/variance.py), by `seed`; 0 serves every attribute.
    shape_variance: float = 0.0
    #: Templates an account may hold before POST /api/templates refuses (Klaviyo: 1,000).
    template_cap: int = TEMPLATE_CAP
