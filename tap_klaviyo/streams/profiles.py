"""Profiles, lists, segments and who belongs to which."""

from __future__ import annotations

from functools import cached_property
from typing import Any, ClassVar

from typing_extensions import override

from tap_klaviyo.client import KlaviyoStream


class ProfileStream(KlaviyoStream):
    """Profiles with their consent (`subscriptions` only comes when asked for)."""

    name = "profile"
    path = "/api/profiles"
    replication_key = "updated"

    @property
    @override
    def additional_fields(self) -> dict[str, str]:  # type: ignore[override]
        fields = ["subscriptions"]
        if self.config.get("include_predictive_analytics"):
            fields.append("predictive_analytics")
        return {"additional-fields[profile]": ",".join(fields)}

    @override
    def limiter_variant(self) -> str:
        return "predictive" if self.config.get("include_predictive_analytics") else ""


class ListStream(KlaviyoStream):
    name = "list"
    path = "/api/lists"
    replication_key = "updated"


class SegmentStream(KlaviyoStream):
    name = "segment"
    path = "/api/segments"
    replication_key = "updated"


class MembershipStream(KlaviyoStream):
    """One row per (group, profile), read for every group on every run.

    A list's `updated` does not move when members join, so the groups come from their own listing,
    not from the list stream's bookmark; each group keeps its own `joined_group_at` bookmark.
    """

    group_path: ClassVar[str]
    group_key: ClassVar[str]
    replication_key = "joined_group_at"
    id_column = "profile_id"
    skip_not_found = True

    @cached_property
    @override
    def partitions(self) -> list[dict[str, Any]]:  # type: ignore[override]
        resource = self.group_path.rsplit("/", 1)[-1][:-1]
        ids: list[str] = []
        for doc in self.pages(self.url_base + self.group_path, {f"fields[{resource}]": "name"}):
            ids.extend(str(item["id"]) for item in doc.get("data") or [])
        return [{self.group_key: group_id} for group_id in ids]

    @override
    def sparse_fields(self) -> dict[str, str]:
        return {"fields[profile]": "joined_group_at"}


class ProfileListStream(MembershipStream):
    name = "profile_list"
    path = "/api/lists/{list_id}/profiles"
    group_path = "/api/lists"
    group_key = "list_id"
    primary_keys = ("list_id", "profile_id")
    context_columns = ("list_id",)
    keep_columns = ("list_id", "profile_id", "joined_group_at")


class ProfileSegmentStream(MembershipStream):
    name = "profile_segment"
    path = "/api/segments/{segment_id}/profiles"
    group_path = "/api/segments"
    group_key = "segment_id"
    primary_keys = ("segment_id", "profile_id")
    context_columns = ("segment_id",)
    keep_columns = ("segment_id", "profile_id", "joined_group_at")


