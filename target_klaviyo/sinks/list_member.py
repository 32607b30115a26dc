"""list_member: profiles added to lists, or removed when `_sdc_deleted_at` is set (only with `allow_deletes`).

Members named by identifiers are added through profile bulk import jobs that add the imported profiles to the
list (10,000 a job): a profile that does not exist yet is created by the same job, with no look-up. Members
named by profile_id are added 1,000 ids a call. Removals need ids: identifiers are looked up 100 a request.

The SDK removes `_sdc_*` columns from records unless record metadata is on: this sink turns it on for itself
(`include_sdc_metadata_properties`), so a deletion is never silently ignored.

ACTIVATE_VERSION mirrors a list audience (Census's "mirror"): at the end of the input, the members of each
list the activated version wrote that it did not write are removed, with allow_deletes (counted otherwise).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from typing_extensions import override

from target_klaviyo.sinks.base import KlaviyoSink
from target_klaviyo.writing.identity import key_of
from target_klaviyo.writing.lists import ListCapReached
from target_klaviyo.writing.mirror import MemberMirror, member_keys
from target_klaviyo.writing.pipeline import Unit
from target_klaviyo.writing.rows import MAX_BODY_BYTES, RowError, chunks, size_of
from target_klaviyo.writing.targets import list_of, profile_key

IDS_PER_CALL = 1_000
MEMBERS_PER_JOB = 10_000
DELETES_OFF = "removing a member needs the allow_deletes setting: nothing was removed"

Member = tuple[dict[str, Any], dict[str, str]]


class ListMemberSink(KlaviyoSink):
    name = "list_member"
    MAX_SIZE_DEFAULT = MEMBERS_PER_JOB
    reads_deletions = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mirror = MemberMirror()

    @override
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        super().process_record(record, context)
        if record.get("_sdc_deleted_at") is None:
            self.mirror.wrote(record.get("_sdc_table_version"), record)

    @override
    def activate_version(self, new_version: int) -> None:
        """Noted only: the version's members may still be coming (`finish` acts on it)."""
        self.mirror.activate(new_version)

    @override
    def finish(self) -> None:
        """Each list the activated version wrote keeps only the members it wrote."""
        written = self.mirror.written()
        if not written:
            return
        self.klaviyo.pipeline.wait_lanes_idle((self.name,))
        for (kind, value), keys in written.items():
            list_id = value if kind == "list_id" else self.klaviyo.lists.find(value, self.what)
            if list_id is None:
                continue  # a dry run that would create it: no member to remove
            params = {"fields[profile]": "email,phone_number,external_id", "page[size]": "100"}
            members = self.klaviyo.client.pages(f"/api/lists/{list_id}/profiles", params, self.what)
            extra = [
                str(m["id"]) for m in members if not member_keys({**(m.get("attributes") or {}), "id": m["id"]}) & keys
            ]
            if not extra:
                continue
            if not self.allow_deletes:
                self.not_deleted(len(extra))
            elif self.dry_run:
                self.count("removed", len(extra))
            else:
                for start in range(0, len(extra), IDS_PER_CALL):
                    self.unlink(list_id, extra[start : start + IDS_PER_CALL])

    @override
    def write(self, rows: list[dict[str, Any]], unit: Unit) -> None:
        parsed = self.checked(rows, profile_key)
        self.sent(unit, len(rows) - len(parsed))
        if parsed:
            self.spawn(unit, self.apply, unit, parsed)

    def apply(self, unit: Unit, parsed: list[Member]) -> None:
        """On the lane: lists resolved (created when named and absent), then each kind of change sent."""
        imports: dict[str, list[Member]] = defaultdict(list)
        by_id: dict[str, list[Member]] = defaultdict(list)
        removals: dict[str, list[Member]] = defaultdict(list)
        allow_deletes = bool(self.config.get("allow_deletes"))
        for row, key in parsed:
            removing = row.get("_sdc_deleted_at") is not None
            try:
                if removing and not allow_deletes:
                    raise RowError(DELETES_OFF)
                list_id = list_of(row, self.klaviyo.lists, self.what, create=not removing)
            except (RowError, ListCapReached) as exc:
                self.reject(row, str(exc))
                self.sent(unit, 1)
                continue
            if list_id is None:
                if self.dry_run and row.get("list_name"):
                    self.count("written")  # the list would be created, and the member added
                else:
                    self.reject(row, "no list: give list_id or list_name")
                self.sent(unit, 1)
                continue
            group = removals if removing else by_id if "profile_id" in key else imports
            group[list_id].append((row, key))
        for list_id, members in removals.items():
            self.remove(unit, list_id, members)
        if self.dry_run:
            added = sum(len(members) for members in (*imports.values(), *by_id.values()))
            self.count("written", added)
            self.sent(unit, added)
            return
        poller = self.klaviyo.poller
        for list_id, members in imports.items():
            for part in chunks(members, MEMBERS_PER_JOB, MAX_BODY_BYTES, size=lambda pair: size_of(pair[1])):
                body, held = poller.prepare_profile_import(unit, part, list_id)
                self.spawn(unit, poller.submit_profile_import, unit, body, held, self.what, self.confirmed)
        for list_id, members in by_id.items():
            ids = [key["profile_id"] for _, key in members]
            for start in range(0, len(ids), IDS_PER_CALL):
                self.spawn(unit, self.relate, unit, "POST", list_id, ids[start : start + IDS_PER_CALL])

    def remove(self, unit: Unit, list_id: str, members: list[Member]) -> None:
        """Ids of the members to remove (looked up by identifier); absent profiles have nothing to remove."""
        found = self.klaviyo.profiles.find([key for _, key in members if "profile_id" not in key], self.what)
        ids = []
        for _row, key in members:
            pid = key.get("profile_id") or found.get(key_of(key))
            if pid is None:
                self.count("unchanged")
                self.sent(unit, 1)
            else:
                ids.append(pid)
        if self.dry_run:
            self.count("removed", len(ids))
            self.sent(unit, len(ids))
            return
        for start in range(0, len(ids), IDS_PER_CALL):
            self.spawn(unit, self.relate, unit, "DELETE", list_id, ids[start : start + IDS_PER_CALL])

    def relate(self, unit: Unit, method: str, list_id: str, ids: list[str]) -> None:
        self.link(method, list_id, ids)
        self.sent(unit, len(ids))
        self.count("removed" if method == "DELETE" else "written", len(ids))

    def unlink(self, list_id: str, ids: list[str]) -> None:
        self.link("DELETE", list_id, ids)
        self.count("removed", len(ids))

    def link(self, method: str, list_id: str, ids: list[str]) -> None:
        body = {"data": [{"type": "profile", "id": pid} for pid in dict.fromkeys(ids)]}
        path = f"/api/lists/{list_id}/relationships/profiles"
        self.klaviyo.client.request(method, path, body=body, what=self.what)
