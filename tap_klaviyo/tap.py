"""tap-klaviyo: settings and the list of streams."""

from __future__ import annotations

import json
from decimal import Decimal
from functools import cached_property
from typing import IO, Any

import click
from singer_sdk import Stream, Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.tap_base import CliTestOptionValue
from typing_extensions import override

from klaviyo_core.clock import Clock
from klaviyo_core.errors import one_line_on_user_error
from klaviyo_core.token_store import config_files_of_this_run, remember_config_files
from tap_klaviyo.reading.bookmarks import quiet_null_value_notes
from tap_klaviyo.reading.output import SingerOutput
from tap_klaviyo.reading.progress import quiet_logger
from tap_klaviyo.reading.run import KlaviyoRun
from tap_klaviyo.reading.settings import CONFIG_SCHEMA, settings_errors
from tap_klaviyo.streams import STREAM_TYPES
from tap_klaviyo.streams.custom import custom_stream_errors, custom_stream_types


class TapKlaviyo(Tap):
    """Singer tap for Klaviyo."""

    name = "tap-klaviyo"
    package_name = "tap-klaviyo-sdk"  # issue 13: the PyPI distribution, for `--version` and `--about`
    config_jsonschema = CONFIG_SCHEMA
    message_writer_class = SingerOutput

    def __init__(self, *args: Any, clock: Clock | None = None, **kwargs: Any) -> None:
        """`clock`: the run's time (tests pass a fake one). Settings the JSON schema cannot express are checked
        here, before any request, each problem one line."""
        self.clock = clock
        quiet_null_value_notes()
        quiet_logger(self.name, partitioned=False)  # the SDK's start-up wiring, kept for DEBUG
        self.config_files = config_files_of_this_run()  # token write-back: the --config files of this run
        #: The streams in the order they are synced (held-back ones last), once computed.
        self.sync_order: dict[str, Stream] | None = None
        super().__init__(*args, **kwargs)
        if kwargs.get("validate_config", True):
            errors = [*settings_errors(self.config), *self.custom_errors]
            if errors:
                raise ConfigValidationError("Invalid tap-klaviyo settings", errors=errors)
        writer = self.message_writer
        if isinstance(writer, SingerOutput):
            writer.state_filter = self.run.bookmarks.guard
            self.run.on_end = writer.flush

    @cached_property
    def run(self) -> KlaviyoRun:
        """Created on the main thread with the first stream, before any worker starts."""
        return KlaviyoRun(self.config, self.logger, self.clock, self.config_files)

    @classmethod
    @override
    def cb_config(cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]) -> Any:
        """The SDK merges the --config files; remember which they were (token write-back)."""
        remember_config_files(ctx, value)
        return super().cb_config(ctx, param, value)

    @property
    @override
    def streams(self) -> dict[str, Stream]:
        """The SDK's streams in the order it syncs them: those held back by tight rate limits (flows, campaign
        details, ...) last. They start fetching when the run begins, so their waits overlap everything synced
        before them instead of holding it up; the SDK would otherwise take them by name, early."""
        found = super().streams
        if self.sync_order is None or self.sync_order.keys() != found.keys():
            later = {name for name, stream in found.items() if held_back(stream)}
            self.sync_order = {n: s for n, s in found.items() if n not in later}
            self.sync_order.update({n: s for n, s in found.items() if n in later})
        return self.sync_order

    @property
    def custom_errors(self) -> list[str]:
        return custom_stream_errors(self.config.get("custom_streams"), {cls.name for cls in STREAM_TYPES})  # type: ignore[misc]

    @override
    def discover_streams(self) -> list[Stream]:
        custom = [] if self.custom_errors else custom_stream_types(self.config.get("custom_streams"))
        streams = [stream_type(tap=self) for stream_type in [*STREAM_TYPES, *custom]]
        self.run.streams = streams
        for stream in streams:
            partitioned = type(stream).partitions is not Stream.partitions or stream.parent_stream_type is not None
            quiet_logger(stream.logger.name, partitioned=partitioned)
        return streams  # type: ignore[return-value]

    # -- the run's lifecycle: one owner -----------------------------------------------------------------

    def __enter__(self) -> TapKlaviyo:
        """A run of this tap is owned: its end (summary, spool removed, workers stopped, memory settings given back,
        output flushed) comes when the block is left, once, whatever failed inside it."""
        self.run.own()
        return self

    def __exit__(self, _exc_type: object, failure: BaseException | None, _traceback: object) -> None:
        self.run.end(failure)

    @classmethod
    @override
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: Any = None,
        state: IO[str] | None = None,
        catalog: IO[str] | None = None,
    ) -> None:
        """The sync command: the SDK's three steps (about, version, a tap and its `sync_all`) with the tap owning
        its run around the final `sync_all`, which has no begin or end hook. Problems the user can fix end the
        run with one line, not a traceback."""
        with one_line_on_user_error(cls.logger):
            super(Tap, cls).invoke(about=about, about_format=about_format)  # --about: the plugin's, then exit
            cls.print_version(print_fn=cls.logger.info)
            with cls(
                config=config.config if config is not None else None,
                state=None if state is None else json.loads(state.read(), parse_float=Decimal),
                catalog=None if catalog is None else json.loads(catalog.read(), parse_float=Decimal),
                parse_env_config=bool(config is not None and config.parse_env),
                validate_config=True,
            ) as tap:
                tap.sync_all()

    @classmethod
    @override
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """`--test` (the check setup wizards and hosted platforms run first) runs in a click callback, outside
        `invoke`: the same owned run, and a bad key or bad settings end it with the same one line as a sync."""
        if value == CliTestOptionValue.Disabled.value:
            return
        config = ctx.params.get("config")
        with (
            one_line_on_user_error(cls.logger),
            cls(
                config=config.config if config is not None else None,
                parse_env_config=bool(config is not None and config.parse_env),
                validate_config=True,
            ) as tap,
        ):
            if value == CliTestOptionValue.Schema.value:
                tap.write_schemas()
            else:
                tap.run_connection_test()
        ctx.exit()


def held_back(stream: Stream) -> bool:
    """A selected top-level stream whose requests (or its children's) wait on a tight rate limit."""
    fanout = getattr(stream, "fanout", None)
    return (
        fanout is not None
        and stream.parent_stream_type is None
        and (stream.selected or stream.has_selected_descendents)
        and fanout.slow
        and int(stream.config.get("max_concurrency") or 8) > 1
    )


if __name__ == "__main__":
    TapKlaviyo.cli()
