"""target-klaviyo: Singer records written back into Klaviyo through its bulk APIs, on the tap's Klaviyo core."""

from __future__ import annotations

import sys
from collections.abc import Callable
from decimal import Decimal
from functools import cached_property
from typing import IO, Any, ClassVar

import msgspec
from singer_sdk import Sink, Target
from singer_sdk.contrib.msgspec import MsgSpecReader
from singer_sdk.exceptions import (
    ConfigValidationError,
    InvalidInputLine,
    RecordsWithoutSchemaException,
)
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities
from singer_sdk.singerlib.encoding import SingerMessageType
from typing_extensions import override

from klaviyo_core.client import AmbiguousWrite, KlaviyoClient
from klaviyo_core.clock import Clock
from klaviyo_core.errors import KlaviyoUserError, one_line_on_user_error
from klaviyo_core.token_store import config_files_of_this_run
from target_klaviyo.sinks import SINK_TYPES
from target_klaviyo.sinks.base import KlaviyoSink
from target_klaviyo.writing.campaign_parts import CampaignParts
from target_klaviyo.writing.identity import ProfileIds
from target_klaviyo.writing.jobs import JobFailed, JobPoller
from target_klaviyo.writing.keyed import TargetObjects
from target_klaviyo.writing.ledger import Ledger
from target_klaviyo.writing.lists import Lists
from target_klaviyo.writing.pipeline import Pipeline
from target_klaviyo.writing.references import SourceNames
from target_klaviyo.writing.rejects import Outcomes
from target_klaviyo.writing.settings import TARGET_CONFIG_SCHEMA, target_settings_errors

#: A STATE whose rows are all confirmed is written at most this often (the run's clock), besides the SDK's own
#: drains (every five minutes, and at the end of the input).
STATE_EVERY_S = 30.0
_decoder = msgspec.json.Decoder(float_hook=Decimal)


class StateGate(MsgSpecReader):
    """The SDK's msgspec reader (numbers parsed as the SDK parses them: a 19.99 stays 19.99), which holds each
    STATE message back until every row before it is confirmed, and ends the run with one line for a line that
    is not JSON.

    The SDK writes the latest STATE it was handed at each drain; it has no public hook to defer a STATE until a
    sink confirms its rows, so the reader hands it over only then (`Ledger`)."""

    def __init__(self, ledger: Ledger, settled: Callable[[], None]) -> None:
        super().__init__()
        self.ledger = ledger
        self.settled = settled

    @override
    def deserialize_json(self, line: str) -> dict[str, Any]:
        try:
            decoded: dict[str, Any] = _decoder.decode(line)
        except msgspec.DecodeError:
            shown = line if len(line) <= 80 else line[:77] + "..."
            raise InvalidInputLine(f"line {shown.strip()!r} is not JSON") from None
        return decoded

    @override
    def process_lines(self, file_input: IO[str] | None, callbacks: dict[str, Callable[[dict[str, Any]], None]]) -> Any:
        hand_over = callbacks[SingerMessageType.STATE]
        ledger, settled = self.ledger, self.settled

        def hold(message: dict[str, Any]) -> None:
            ledger.hold_state(message, hand_over)

        def then_settle(callback: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
            def handle(message: dict[str, Any]) -> None:
                callback(message)
                if ledger.settled.is_set():
                    settled()

            return handle

        gated = {kind: then_settle(callback) for kind, callback in {**callbacks, SingerMessageType.STATE: hold}.items()}
        return super().process_lines(file_input, gated)


class UnknownStream(KlaviyoUserError):
    """A stream the target does not know how to write."""


class TooManyRejects(KlaviyoUserError):
    """More rows were rejected than `max_rejects` allows."""


class TargetKlaviyo(Target):
    """Singer target for Klaviyo: profiles, events, lists, memberships and consent, and the objects a team manages
    (templates, images, segments, campaign drafts, catalog, suppressions); it never sends a campaign."""

    capabilities: ClassVar[list[CapabilitiesEnum]] = [*Target.capabilities, PluginCapabilities.ACTIVATE_VERSION]

    name = "target-klaviyo"
    package_name = "tap-klaviyo-sdk"
    config_jsonschema = TARGET_CONFIG_SCHEMA

    def __init__(self, *args: Any, clock: Clock | None = None, **kwargs: Any) -> None:
        """`clock`: the run's time (tests pass a fake one). Settings are checked before any input is read."""
        self.clock = clock or Clock()
        self.config_files = config_files_of_this_run()
        self.ledger = Ledger()
        #: Every sink of the run (the SDK keeps its own list private): drained at the end of the input.
        self.sinks: list[KlaviyoSink] = []
        self.state_written_at = self.clock.monotonic()
        kwargs.setdefault("message_reader", StateGate(self.ledger, self.settle_states))
        super().__init__(*args, **kwargs)
        if kwargs.get("validate_config", True):
            errors = target_settings_errors(self.config)
            if errors:
                raise ConfigValidationError("Invalid target-klaviyo settings", errors=errors)

    @cached_property
    def client(self) -> KlaviyoClient:
        return KlaviyoClient(self.config, self.logger, self.clock, self.config_files)

    @cached_property
    def pipeline(self) -> Pipeline:
        return Pipeline(self.ledger, max(1, int(self.config.get("max_concurrency") or 8)))

    @cached_property
    def poller(self) -> JobPoller:
        return JobPoller(self.client, self.pipeline, float(self.config.get("job_poll_interval") or 2))

    @cached_property
    def outcomes(self) -> Outcomes:
        return Outcomes(self.config.get("rejects_file"), self.logger)

    @cached_property
    def lists(self) -> Lists:
        return Lists(self.client, bool(self.config.get("dry_run")))

    @cached_property
    def profiles(self) -> ProfileIds:
        return ProfileIds(self.client)

    @cached_property
    def objects(self) -> TargetObjects:
        return TargetObjects(self.client)

    @cached_property
    def names(self) -> SourceNames:
        return SourceNames()

    @cached_property
    def campaign_parts(self) -> CampaignParts:
        return CampaignParts()

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

    def settle_states(self) -> None:
        """Batches settled (on the reader's thread): STATE messages whose rows are all confirmed go to the SDK,
        which writes the latest at its drain; one is asked for when the last STATE written is old."""
        self.pipeline.raise_if_failed()
        released = self.ledger.release_ready()
        if released and self.clock.monotonic() - self.state_written_at >= STATE_EVERY_S:
            self.state_written_at = self.clock.monotonic()
            self.drain_all()

    @override
    def process_endofpipe(self) -> None:
        """The end of the input: every batch handed on and confirmed, the last STATE written, then the summary
        and a failing exit when more rows were rejected than allowed."""
        for sink in self.sinks:
            self.drain_one(sink)
        for sink in sorted(self.sinks, key=lambda sink: sink.finish_rank):
            sink.finish()
        self.pipeline.wait_until_settled()
        self.ledger.release_ready()
        super().process_endofpipe()
        self.pipeline.close()
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
        with one_line_on_user_error(cls.logger, JobFailed, AmbiguousWrite):
            try:
                super().invoke(*args, **kwargs)
            except (InvalidInputLine, RecordsWithoutSchemaException) as exc:
                cls.logger.error("target-klaviyo: an input line is not a Singer message (%s); fix the input", exc)
                sys.exit(1)


if __name__ == "__main__":
    TargetKlaviyo.cli()
