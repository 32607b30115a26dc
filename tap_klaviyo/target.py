"""target-klaviyo: Singer records written back into Klaviyo through its bulk APIs, on the tap's Klaviyo core."""

from __future__ import annotations

import json
import sys
from functools import cached_property
from typing import Any

from singer_sdk import Sink, Target
from singer_sdk.exceptions import (
    ConfigValidationError,
    FatalAPIError,
    InvalidInputLine,
    RecordsWithoutSchemaException,
)
from singer_sdk.io_base import SingerReader
from typing_extensions import override

from tap_klaviyo.api.client import AmbiguousWrite, KlaviyoClient
from tap_klaviyo.api.clock import Clock
from tap_klaviyo.api.errors import KlaviyoUserError, redact
from tap_klaviyo.api.token_store import config_files_of_this_run
from tap_klaviyo.sinks import SINK_TYPES
from tap_klaviyo.writing.identity import ProfileIds
from tap_klaviyo.writing.jobs import JobFailed
from tap_klaviyo.writing.lists import Lists
from tap_klaviyo.writing.rejects import Outcomes
from tap_klaviyo.writing.settings import TARGET_CONFIG_SCHEMA, target_settings_errors


class QuietReader(SingerReader):
    """The SDK's reader, without the traceback it logs for a line that is not JSON (the run ends with one line)."""

    @override
    def deserialize_json(self, line: str) -> dict[str, Any]:
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            shown = line if len(line) <= 80 else line[:77] + "..."
            raise InvalidInputLine(f"line {shown.strip()!r} is not JSON") from None


class UnknownStream(KlaviyoUserError):
    """A stream the target does not know how to write."""


class TooManyRejects(KlaviyoUserError):
    """More rows were rejected than `max_rejects` allows."""


class TargetKlaviyo(Target):
    """Singer target for Klaviyo: profile, event, list, list_member and subscription streams."""

    name = "target-klaviyo"
    package_name = "tap-klaviyo-sdk"
    config_jsonschema = TARGET_CONFIG_SCHEMA
    message_reader_class = QuietReader

    def __init__(self, *args: Any, clock: Clock | None = None, **kwargs: Any) -> None:
        """`clock`: the run's time (tests pass a fake one). Settings are checked before any input is read."""
        self.clock = clock
        self.config_files = config_files_of_this_run()
        super().__init__(*args, **kwargs)
        TargetKlaviyo.last_run = self
        if kwargs.get("validate_config", True):
            errors = target_settings_errors(self.config)
            if errors:
                raise ConfigValidationError("Invalid target-klaviyo settings", errors=errors)

    @cached_property
    def client(self) -> KlaviyoClient:
        return KlaviyoClient(self.config, self.logger, self.clock, self.config_files)

    @cached_property
    def outcomes(self) -> Outcomes:
        return Outcomes(self.config.get("rejects_file"), self.logger)

    @cached_property
    def lists(self) -> Lists:
        return Lists(self.client, bool(self.config.get("dry_run")))

    @cached_property
    def profiles(self) -> ProfileIds:
        return ProfileIds(self.client, bool(self.config.get("dry_run")))

    @override
    def get_sink_class(self, stream_name: str) -> type[Sink]:
        sink = SINK_TYPES.get(stream_name)
        if sink is None:
            msg = (
                f"target-klaviyo cannot write stream {stream_name!r}: it writes {', '.join(SINK_TYPES)}. "
                "Rename the stream (a stream map's alias) or leave it out; nothing was written for it."
            )
            raise UnknownStream(msg)
        return sink

    #: The instance the CLI created (the SDK's `listen` is final and its end of input private, so the run's
    #: summary is given after `invoke` returns, on this instance).
    last_run: TargetKlaviyo | None = None

    def finish(self) -> None:
        """After the SDK read and drained everything: the summary, and a failing exit when rows were rejected."""
        self.outcomes.close()
        dry = bool(self.config.get("dry_run"))
        for line in self.outcomes.summary(dry):
            self.logger.info("%s", line)
        self.logger.info("%d requests to Klaviyo", self.client.requests)
        rejected, allowed = self.outcomes.rejected, int(self.config.get("max_rejects") or 0)
        if rejected > allowed:
            where = f" (see {self.config['rejects_file']})" if self.config.get("rejects_file") else ""
            raise TooManyRejects(f"{rejected} rows were rejected{where}; max_rejects allows {allowed}")

    @classmethod
    @override
    def invoke(cls, *args: Any, **kwargs: Any) -> None:
        """Problems the user can fix end the run with one line, not a traceback."""
        try:
            super().invoke(*args, **kwargs)
            if cls.last_run is not None and not kwargs.get("about"):
                cls.last_run.finish()
        except (KlaviyoUserError, FatalAPIError, JobFailed, AmbiguousWrite) as exc:
            cls.logger.error("%s", redact(str(exc)))
            sys.exit(1)
        except (InvalidInputLine, RecordsWithoutSchemaException) as exc:
            cls.logger.error("target-klaviyo: an input line is not a Singer message (%s); fix the input", exc)
            sys.exit(1)


if __name__ == "__main__":
    TargetKlaviyo.cli()
