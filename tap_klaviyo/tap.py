"""tap-klaviyo: settings and the list of streams."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import cached_property
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from singer_sdk import Stream, Tap
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError
from typing_extensions import override

from tap_klaviyo import __version__
from tap_klaviyo.auth import ApiKeyAuth, OAuthRefreshAuth
from tap_klaviyo.client import KlaviyoStream
from tap_klaviyo.concurrency import Budget
from tap_klaviyo.errors import KlaviyoUserError, redact
from tap_klaviyo.output import SingerOutput
from tap_klaviyo.pacing import Limiter, Pacer
from tap_klaviyo.progress import lean_garbage_collection, reporting
from tap_klaviyo.settings import (
    CONFIG_SCHEMA,
    SECRET_SETTINGS,
    parse_date_setting,
    settings_errors,
)
from tap_klaviyo.streams import STREAM_TYPES
from tap_klaviyo.streams.custom import custom_stream_errors, custom_stream_types


class RunEnded(Exception):
    """Raised on a worker that would send a request after the sync ended (its pages have no taker)."""


class TapKlaviyo(Tap):
    """Singer tap for Klaviyo."""

    name = "tap-klaviyo"
    package_name = "tap-klaviyo-sdk"  # issue 13: the PyPI distribution, for `--version` and `--about`
    config_jsonschema = CONFIG_SCHEMA
    message_writer_class = SingerOutput

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.pacer = Pacer()
        self.run_started = datetime.now(timezone.utc)
        self.run_started_iso = self.run_started.isoformat()
        super().__init__(*args, **kwargs)

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        errors = super()._validate_config(raise_errors=raise_errors) or []
        ours = settings_errors(self.config)
        ours += custom_stream_errors(self.config.get("custom_streams"), {cls.name for cls in STREAM_TYPES})  # type: ignore[misc]
        if ours and raise_errors:
            raise ConfigValidationError("Invalid tap-klaviyo settings", errors=ours)
        return [*errors, *ours]

    @override
    def discover_streams(self) -> list[Stream]:
        types = [*STREAM_TYPES, *custom_stream_types(self.config.get("custom_streams"))]
        return [stream_type(tap=self) for stream_type in types]

    # -- run-wide resources shared by every stream ---------------------------------------------------

    @cached_property
    def secrets(self) -> tuple[str, ...]:
        return tuple(str(self.config[name]) for name in SECRET_SETTINGS if self.config.get(name))

    @cached_property
    def session(self) -> requests.Session:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    @cached_property
    def authenticator(self) -> ApiKeyAuth | OAuthRefreshAuth:
        if self.config.get("api_key"):
            return ApiKeyAuth(str(self.config["api_key"]))
        return OAuthRefreshAuth(
            token_url=str(self.config["api_url"]).rstrip("/") + "/oauth/token",
            client_id=str(self.config["client_id"]),
            client_secret=str(self.config["client_secret"]),
            refresh_token=str(self.config["refresh_token"]),
            timeout=float(self.config.get("request_timeout") or 30),
        )

    @cached_property
    def user_agent(self) -> str:
        return str(self.config.get("user_agent") or f"tap-klaviyo/{__version__}")

    @cached_property
    def end_date(self) -> datetime | None:
        return parse_date_setting(self.config, "end_date")

    @cached_property
    def end_date_iso(self) -> str | None:
        return self.end_date.astimezone(timezone.utc).isoformat() if self.end_date else None

    @override  # type: ignore[misc]  # final in the SDK; this only wraps it
    def sync_all(self) -> None:
        """The SDK's sync, with progress lines and a summary on stderr and all output flushed at the end."""
        streams = [s for s in self.streams.values() if isinstance(s, KlaviyoStream)]
        by_name = dict(self.streams)
        self.abort_error = None
        try:
            with lean_garbage_collection(), reporting(streams, self.logger):
                started = self._start_slow_streams(streams)
                # Streams fetching in the background are emitted last, when their pages are (mostly) in.
                self._streams = {
                    name: by_name[name]
                    for name in sorted(by_name, key=lambda n: n in started)  # stable
                }
                super().sync_all()
        finally:
            self._streams = by_name
            for stream in streams:
                stream.close_prefetch()
            # Workers still fetching for nobody stop at their next request.
            self.abort(RunEnded("the sync has ended"))
            writer = self.message_writer
            if isinstance(writer, SingerOutput):
                writer.flush()

    def _start_slow_streams(self, streams: list[KlaviyoStream]) -> set[str]:
        """Streams held back by tight rate limits (flows, campaign details, ...) start fetching now, in the
        background, so their waits overlap with the other streams instead of adding up."""
        started = {
            s.name
            for s in streams
            if (s.selected or s.has_selected_descendents) and s.parent_stream_type is None and s.start_early()
        }
        if started:
            self.logger.info("fetching ahead (tight rate limits): %s", ", ".join(sorted(started)))
        return started

    #: An error on a background fetch that ends the run; every thread raises it at its next request.
    abort_error: BaseException | None = None

    def abort(self, exc: BaseException) -> None:
        if self.abort_error is None:
            self.abort_error = exc

    def check_aborted(self) -> None:
        if self.abort_error is not None:
            raise self.abort_error

    @cached_property
    def prefetch_budget(self) -> Budget:
        return Budget()

    @cached_property
    def in_flight(self) -> threading.BoundedSemaphore:
        """At most max_concurrency requests on the wire at once, whatever thread sends them."""
        return threading.BoundedSemaphore(max(1, int(self.config.get("max_concurrency") or 8)))

    @contextmanager
    def request_slot(self, limiter: Limiter) -> Iterator[None]:
        """One request may leave now: a slot is free and the endpoint's limiter counts it at this moment.
        A request its limiter holds back gives its slot up while it waits."""
        while True:
            self.check_aborted()
            self.in_flight.acquire()
            try:
                wait = limiter.try_acquire()
            except BaseException:
                self.in_flight.release()
                raise
            if wait <= 0:
                break
            self.in_flight.release()
            limiter.sleep(wait)
        try:
            yield
        finally:
            self.in_flight.release()

    @classmethod
    @override
    def invoke(cls, *args: Any, **kwargs: Any) -> None:
        """Problems the user can fix end the run with one line, not a traceback."""
        try:
            super().invoke(*args, **kwargs)
        except (KlaviyoUserError, FatalAPIError) as exc:
            cls.logger.error("%s", redact(str(exc)))
            sys.exit(1)


if __name__ == "__main__":
    TapKlaviyo.cli()
