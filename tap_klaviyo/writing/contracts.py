"""What a sink needs of the target's run (the target provides it; sinks never import the target)."""

from __future__ import annotations

from typing import Protocol

from tap_klaviyo.api.client import KlaviyoClient
from tap_klaviyo.writing.identity import ProfileIds
from tap_klaviyo.writing.lists import Lists
from tap_klaviyo.writing.rejects import Outcomes


class WriteRun(Protocol):
    """The run-wide pieces every sink shares: one client (pacing, auth), outcomes, lists, profile ids."""

    @property
    def client(self) -> KlaviyoClient: ...

    @property
    def outcomes(self) -> Outcomes: ...

    @property
    def lists(self) -> Lists: ...

    @property
    def profiles(self) -> ProfileIds: ...
