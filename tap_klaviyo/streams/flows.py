"""Flows, their actions and the messages those actions send."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from typing_extensions import override

from tap_klaviyo.reading.children import SideloadedStream
from tap_klaviyo.reading.stream import KlaviyoStream


class FlowStream(KlaviyoStream):
    """Archived and live flows (Klaviyo hides archived ones unless asked), actions included in one go."""

    name = "flow"
    path = "/api/flows"
    replication_key = "updated"
    sideloads = {"flow-actions": "flow_action"}
    partitions = [{"archived": False}, {"archived": True}]

    @override
    def static_filters(self, context: Mapping[str, Any] | None) -> list[str]:
        archived = "true" if context and context.get("archived") else "false"
        return [f"equals(archived,{archived})"]

    @override
    def get_child_context(self, record: dict[str, Any], context: Mapping[str, Any] | None) -> dict[str, Any]:
        return {"flow_id": record["id"]}


class FlowActionStream(SideloadedStream):
    name = "flow_action"
    path = "/api/flows/{flow_id}/flow-actions"
    parent_stream_type = FlowStream
    parent_key = "flow_id"
    state_partitioning_keys = ()
    context_columns = ("flow_id",)

    @override
    def get_child_context(self, record: dict[str, Any], context: Mapping[str, Any] | None) -> dict[str, Any]:
        action_type = (record.get("definition") or {}).get("type")
        return {"flow_action_id": record["id"], "flow_id": record.get("flow_id"), "action_type": action_type}


#: Flow action types that never send anything, so have no flow messages (the spec's action definitions
#: without a `message`): asking would spend a request of the 60 a minute flows allow.
MESSAGELESS_ACTIONS = frozenset(
    {
        "time-delay",
        "countdown-delay",
        "target-date",
        "back-in-stock-delay",
        "conditional-split",
        "trigger-split",
        "multi-branch-split",
        "action-output-split",
        "update-profile",
        "list-update",
        "code",
    }
)


class FlowMessageStream(KlaviyoStream):
    name = "flow_messages"
    path = "/api/flow-actions/{flow_action_id}/flow-messages"
    parent_stream_type = FlowActionStream
    state_partitioning_keys = ()
    context_columns = ("flow_action_id", "flow_id")
    skip_not_found = True

    @override
    def wants(self, context: Mapping[str, Any]) -> bool:
        return context.get("action_type") not in MESSAGELESS_ACTIONS
