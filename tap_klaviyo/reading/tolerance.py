"""Errors that end a stream or a partition, not the run: a missing scope (when allowed), a parent deleted between
listing and reading, a spent daily cap. Each gets one warning; anything else ends the run."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from singer_sdk import RESTStream

from klaviyo_core.errors import KlaviyoAPIError, KlaviyoPermissionError, RateLimitExhausted
from tap_klaviyo.reading.run import KlaviyoRun


class ErrorTolerance(RESTStream[Any]):
    """Which failures a KlaviyoStream survives, and what it says when it does."""

    run: KlaviyoRun
    denied: bool
    #: A deleted parent between listing and reading: skip its children with a warning.
    skip_not_found: ClassVar[bool] = False
    #: A spent rate-limit budget (daily cap) ends this stream with a warning; the run goes on.
    stop_when_exhausted: ClassVar[bool] = False

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
            return bool(self.config.get("skip_streams_without_scope"))
        if isinstance(exc, KlaviyoAPIError):
            return self.skip_not_found and exc.status == 404
        if isinstance(exc, RateLimitExhausted):
            return self.stop_when_exhausted
        return False
