"""Singer tap for Klaviyo."""

from __future__ import annotations

# The one place the version is written: the build reads it (pyproject's [tool.hatch.version]), the
# installed metadata and `tap-klaviyo --version` follow.
__version__ = "0.1.0"
