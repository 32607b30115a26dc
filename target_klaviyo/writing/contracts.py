"""What a sink needs of the target's run (the target provides it; sinks never import the target)."""

from __future__ import annotations

from typing import Any, Protocol

from klaviyo_core.client import KlaviyoClient
from target_klaviyo.writing.campaign_parts import CampaignParts
from target_klaviyo.writing.identity import ProfileIds
from target_klaviyo.writing.jobs import JobPoller
from target_klaviyo.writing.keyed import TargetObjects
from target_klaviyo.writing.ledger import Ledger
from target_klaviyo.writing.lists import Lists
from target_klaviyo.writing.pipeline import Pipeline
from target_klaviyo.writing.references import SourceNames
from target_klaviyo.writing.rejects import Outcomes


class WriteRun(Protocol):
    """The run-wide pieces every sink shares: one client (pacing, auth), the ledger and pipeline of batches in
    flight, the job poller, outcomes, lists and profile ids."""

    sinks: list[Any]

    @property
    def client(self) -> KlaviyoClient: ...

    @property
    def ledger(self) -> Ledger: ...

    @property
    def pipeline(self) -> Pipeline: ...

    @property
    def poller(self) -> JobPoller: ...

    @property
    def outcomes(self) -> Outcomes: ...

    @property
    def lists(self) -> Lists: ...

    @property
    def profiles(self) -> ProfileIds: ...

    @property
    def objects(self) -> TargetObjects: ...

    @property
    def names(self) -> SourceNames: ...

    @property
    def campaign_parts(self) -> CampaignParts: ...
