"""Singer tap for Klaviyo."""

from __future__ import annotations

from klaviyo_core import __version__

__all__ = ["__version__"]
