"""The Klaviyo core both commands build on: auth, pacing, retries, errors, the spec, JSON:API documents,
timestamps, and the target's request path (client.py).

It knows nothing of streams or sinks.
"""

from __future__ import annotations

# The one place the version is written: the build reads it (pyproject's [tool.hatch.version]), the
# installed metadata and both commands' `--version` follow.
__version__ = "0.1.0"
