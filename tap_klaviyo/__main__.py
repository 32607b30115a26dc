"""`python -m tap_klaviyo` runs the tap."""

from __future__ import annotations

from tap_klaviyo.tap import TapKlaviyo

TapKlaviyo.cli()
