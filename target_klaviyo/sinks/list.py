"""list: a list is created when no list has the row's name (Klaviyo caps creation at 150 a day); a row with
`_sdc_deleted_at` deletes the list of that name, only with the allow_deletes setting; an ACTIVATE_VERSION deletes,
at the end of the input, the lists the version did not write (with allow_deletes; counted otherwise)."""

from __future__ import annotations

from typing import Any

from typing_extensions import override

from target_klaviyo.sinks.base import KlaviyoSink
from target_klaviyo.writing.keyed import delete_object
from target_klaviyo.writing.lists import ListCapReached
from target_klaviyo.writing.mirror import Mirror
from target_klaviyo.writing.pipeline import Unit
from target_klaviyo.writing.rows import RowError

OPT_IN = ("single_opt_in", "double_opt_in")


class ListSink(KlaviyoSink):
    name = "list"
    reads_deletions = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mirror = Mirror()
        #: Names counted as created: a list is created once a run, whichever sink got there first and however
        #: many of its rows come (the rest count unchanged).
        self.counted_created: set[str] = set()

    @override
    def activate_version(self, new_version: int) -> None:
        """Noted only: the version's lists may still be coming (`finish` acts on it)."""
        self.mirror.activate(new_version)

    @override
    def finish(self) -> None:
        """The lists of the account the activated version did not write are deleted."""
        if self.mirror.activated is None:
            return
        self.klaviyo.pipeline.wait_lanes_idle((self.name,))
        lists = self.klaviyo.lists
        lists.load(self.what)
        extra = self.mirror.extra(list(lists.by_name or {}))
        if not extra:
            return
        if not self.allow_deletes:
            self.not_deleted(len(extra))
            return
        for name in extra:
            self.count(self.remove(name))

    @staticmethod
    def parsed(row: dict[str, Any]) -> tuple[str, str | None]:
        name = str(row.get("name") or "").strip()
        if not name:
            raise RowError("no name: a list is matched and created by its name")
        opt_in = row.get("opt_in_process")
        if opt_in is not None and opt_in not in OPT_IN:
            raise RowError(f"opt_in_process {opt_in!r} must be one of {', '.join(OPT_IN)}")
        return name, opt_in

    @override
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        """Lists are declared when read: a membership or subscription drained first creates them alike."""
        super().process_record(record, context)
        if record.get("_sdc_deleted_at") is not None:
            return
        self.klaviyo.names.note("list", record)
        self.mirror.wrote(record.get("_sdc_table_version"), str(record.get("name") or "").strip() or None)
        try:
            name, opt_in = self.parsed(record)
        except RowError:
            return
        self.klaviyo.lists.declare(name, opt_in)

    def wanted(self, row: dict[str, Any]) -> tuple[str, str | None, bool]:
        deleting = self.deleting(row)
        return (*self.parsed(row), deleting)

    @override
    def write(self, rows: list[dict[str, Any]], unit: Unit) -> None:
        accepted = self.checked(rows, self.wanted)
        self.sent(unit, len(rows) - len(accepted))
        if accepted:
            self.spawn(unit, self.ensure, unit, accepted)

    def ensure(self, unit: Unit, accepted: list[tuple[dict[str, Any], tuple[str, str | None, bool]]]) -> None:
        for row, (name, opt_in, deleting) in accepted:
            self.sent(unit, 1)
            if deleting:
                self.count(self.remove(name))
                continue
            try:
                _list_id, created = self.klaviyo.lists.ensure(name, self.what, opt_in)
            except ListCapReached as exc:
                self.reject(row, str(exc))
                continue
            with self.klaviyo.lists.lock:  # units of this sink may run at once
                first = created and name not in self.counted_created
                self.counted_created.add(name)
            self.count("created" if first else "unchanged")

    def remove(self, name: str) -> str:
        """Delete the list named `name` (absent: nothing to do)."""
        lists = self.klaviyo.lists
        with lists.lock:
            list_id = lists.find(name, self.what)
            if list_id is None:
                return "unchanged"
            if not self.dry_run:
                delete_object(self.klaviyo.client, f"/api/lists/{list_id}", self.what)
                lists.forget(name)
            return "removed"
