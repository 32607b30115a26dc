"""list_member: profiles added to lists (1,000 ids a call), or removed when `_sdc_deleted_at` is set.

The SDK removes `_sdc_*` columns from records unless record metadata is on: this sink turns it on for itself
(`include_sdc_metadata_properties`), so a deletion is never silently ignored.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from typing_extensions import override

from tap_klaviyo.sinks.base import KlaviyoSink
from tap_klaviyo.writing.lists import ListCapReached
from tap_klaviyo.writing.rows import RowError
from tap_klaviyo.writing.targets import list_of, profile_key, resolve

IDS_PER_CALL = 1_000
#: What the SDK stamps on each record when metadata is on (the row as read is what a reject shows).
STAMPED = ("_sdc_received_at", "_sdc_batched_at", "_sdc_sequence", "_sdc_sync_started_at")


class ListMemberSink(KlaviyoSink):
    name = "list_member"

    @property
    @override
    def include_sdc_metadata_properties(self) -> bool:
        return True

    @override
    def process_batch(self, context: dict[str, Any]) -> None:
        for row in context.get("records", []):
            for name in STAMPED:
                row.pop(name, None)
        super().process_batch(context)

    @override
    def write(self, rows: list[dict[str, Any]]) -> None:
        lists, what = self.klaviyo.lists, self.what
        parsed = []
        for row, key in self.checked(rows, profile_key):
            removing = row.get("_sdc_deleted_at") is not None
            try:
                list_id = list_of(row, lists, what, create=not removing)
            except (RowError, ListCapReached) as exc:
                self.reject(row, str(exc))
                continue
            if list_id is None and not (self.dry_run and row.get("list_name")):
                self.reject(row, "no list: give list_id or list_name")
                continue
            parsed.append((row, key, list_id, removing))
        ids = resolve([key for _, key, _, _ in parsed], self.klaviyo.profiles, what, create=not self.dry_run)
        groups: dict[tuple[str, bool], list[str]] = defaultdict(list)
        for (_row, _key, list_id, removing), pid in zip(parsed, ids, strict=True):
            if pid is None or list_id is None:
                self.count("unchanged" if removing else "written")  # nothing to remove / a dry run's new profile
                continue
            groups[(list_id, removing)].append(pid)
        for (list_id, removing), pids in groups.items():
            unique = list(dict.fromkeys(pids))
            self.count("removed" if removing else "written", len(pids))
            if self.dry_run:
                continue
            for start in range(0, len(unique), IDS_PER_CALL):
                body = {"data": [{"type": "profile", "id": pid} for pid in unique[start : start + IDS_PER_CALL]]}
                path = f"/api/lists/{list_id}/relationships/profiles"
                self.klaviyo.client.request("DELETE" if removing else "POST", path, body=body, what=what)
