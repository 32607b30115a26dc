"""Profiles, lists, segments and who belongs to which."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from functools import cached_property
from typing import Any, ClassVar

from typing_extensions import override

from klaviyo_core.documents import nested, objects_of
from klaviyo_core.timestamps import normalize_timestamp, parse_utc
from tap_klaviyo.reading.children import Listing
from tap_klaviyo.reading.stream import KlaviyoStream


class ProfileStream(KlaviyoStream):
    """Profiles with their consent (`subscriptions` only comes when asked for)."""

    name = "profile"
    path = "/api/profiles"
    replication_key = "updated"
    windowed = True
    lean_documents = True
    full_read_setting = "profile_full_read_days"
    nested_packing = True  # children's contexts read only the id

    @property
    @override
    def additional_fields(self) -> dict[str, str]:  # type: ignore[override]
        fields = ["subscriptions"]
        if self.config.get("include_predictive_analytics"):
            fields.append("predictive_analytics")
        return {"additional-fields[profile]": ",".join(fields)}


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
    not from the list stream's bookmark; each group keeps its own `joined_group_at` bookmark. Removals leave
    no trace in joined_group_at: every few days every membership is read again (`full_reads`).
    """

    full_read_setting = "membership_full_refresh_days"

    group_path: ClassVar[str]
    group_key: ClassVar[str]
    replication_key = "joined_group_at"
    id_column = "profile_id"
    skip_not_found = True

    @cached_property
    @override
    def partitions(self) -> list[dict[str, Any]]:
        resource = self.group_path.rsplit("/", 1)[-1][:-1]
        ids: list[str] = []
        with self.tolerance.tolerated_errors(None):
            listing = Listing(self.klaviyo_tap, self.group_path, {f"fields[{resource}]": "name"})
            ids.extend(str(group["id"]) for group in listing.all())
        return [{self.group_key: group_id} for group_id in ids]

    @override
    def sparse_fields(self) -> dict[str, str]:
        return {"fields[profile]": "joined_group_at"}

    @override
    def get_records(self, context: Mapping[str, Any] | None) -> Iterable[dict[str, Any]]:
        if not context:
            return  # an account without lists (or segments): the SDK still asks once, without a group
        yield from super().get_records(context)


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


SUPPRESSION = "subscriptions.email.marketing.suppression.timestamp"
LIST_SUPPRESSION = "subscriptions.email.marketing.list_suppressions.timestamp"


class ExclusionStream(KlaviyoStream):
    """Suppressions read with Klaviyo's own suppression filters on /api/profiles, never a full profile scan."""

    path = "/api/profiles"
    replication_key = "timestamp"
    full_read_setting = "profile_full_read_days"
    additional_fields = {"additional-fields[profile]": "subscriptions"}
    #: A lower bound is what makes the filter select suppressed profiles only.
    earliest = datetime(2010, 1, 1, tzinfo=timezone.utc)

    @override
    def start_bound(self, context: Mapping[str, Any] | None) -> datetime:
        return super().start_bound(context) or self.earliest

    @override
    def sparse_fields(self) -> dict[str, str]:
        return {"fields[profile]": "email,subscriptions"}

    @override
    def records_of(self, doc: Any) -> list[dict[str, Any]]:
        """One row per suppression of each profile on the page."""
        rows: list[dict[str, Any]] = []
        with_list = "list_id" in self.schema["properties"]
        for profile in super().records_of(doc):
            marketing = nested(profile, "subscriptions", "email", "marketing")
            for row in self.rows(marketing):
                rows.append(
                    {
                        "profile_id": profile["id"],
                        "email": profile.get("email"),
                        "reason": row.get("reason"),
                        "timestamp": normalize_timestamp(row.get("timestamp")),
                        **({"list_id": row.get("list_id")} if with_list else {}),
                    }
                )
        return rows

    def rows(self, marketing: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    @override
    def post_process(self, row: dict[str, Any], context: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        self.full_reads.record(row, context)
        return self.shape.complete(row)

    @classmethod
    @override
    def build_schema(cls) -> dict[str, Any]:
        props: dict[str, Any] = {
            "profile_id": {"type": ["string"]},
            "email": {"type": ["string", "null"]},
            "reason": {"type": ["string", "null"]},
            "timestamp": {"type": ["string", "null"], "format": "date-time"},
        }
        if "list_id" in cls.primary_keys:
            props["list_id"] = {"type": ["string"]}
        return {"type": "object", "properties": props}


class GlobalExclusionStream(ExclusionStream):
    """One row per profile suppressed from all email marketing: its latest suppression."""

    name = "global_exclusion"
    primary_keys = ("profile_id",)
    filter_field = SUPPRESSION
    sort_by = SUPPRESSION

    @override
    def rows(self, marketing: dict[str, Any]) -> list[dict[str, Any]]:
        entries = [e for e in objects_of(marketing.get("suppression")) if parse_utc(e.get("timestamp"))]
        return (
            [max(entries, key=lambda e: parse_utc(e["timestamp"]) or datetime.min.replace(tzinfo=timezone.utc))]
            if entries
            else []
        )


class ListExclusionStream(ExclusionStream):
    """One row per (profile, list) suppression."""

    name = "list_exclusion"
    primary_keys = ("profile_id", "list_id")
    filter_field = LIST_SUPPRESSION
    sort_by = LIST_SUPPRESSION

    @override
    def rows(self, marketing: dict[str, Any]) -> list[dict[str, Any]]:
        return [e for e in objects_of(marketing.get("list_suppressions")) if e.get("timestamp") and e.get("list_id")]
