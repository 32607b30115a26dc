"""Errors that end a stream or a partition, not the run: a missing scope (when allowed), a parent deleted between
listing and reading, a spent daily cap. Each gets one warning; anything else ends the run."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from klaviyo_core.errors import KlaviyoAPIError, KlaviyoPermissionError, RateLimitExhausted


class AbortSource(Protocol):
    """The run as tolerance sees it: the error another stream ended the run with, if any."""

    @property
    def abort_error(self) -> BaseException | None: ...


@dataclass
class Tolerance:
    """Which failures one stream survives, what it says when it does, and whether it was stopped (`denied`)."""

    name: str
    logger: logging.Logger
    run: AbortSource
    skip_without_scope: bool
    skip_not_found: bool
    stop_when_exhausted: bool
    #: The stream stopped with a warning (no scope, a spent budget): nothing more is fetched for it.
    denied: bool = False

    @contextmanager
    def tolerated_errors(self, context: Mapping[str, Any] | None) -> Iterator[None]:
        try:
            yield
        except (KlaviyoAPIError, RateLimitExhausted) as exc:
            if not self.tolerates(exc):
                raise
            if isinstance(exc, KlaviyoPermissionError):
                self.denied = True
                self.logger.warning("skipping stream %s: %s", self.name, exc)
            elif isinstance(exc, RateLimitExhausted):
                self.denied = True
                self.logger.warning("%s stopped early, its state kept where it got: %s", self.name, exc)
            else:
                self.logger.warning("%s: %s is gone (404); skipping it", self.name, dict(context or {}))

    def tolerates(self, exc: BaseException) -> bool:
        """Whether `exc` ends only this stream or partition (with a warning) rather than the run."""
        if exc is self.run.abort_error:
            return False  # another stream's failure, raised here to end the run early
        if isinstance(exc, KlaviyoPermissionError):
            return self.skip_without_scope
        if isinstance(exc, KlaviyoAPIError):
            return self.skip_not_found and exc.status == 404
        if isinstance(exc, RateLimitExhausted):
            return self.stop_when_exhausted
        return False
