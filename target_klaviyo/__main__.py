"""`python -m target_klaviyo`: the target-klaviyo command."""

from __future__ import annotations

from target_klaviyo.target import TargetKlaviyo

TargetKlaviyo.cli()
