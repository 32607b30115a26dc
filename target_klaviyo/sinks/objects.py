"""Objects written one call each (templates, images, ...), matched by key in the target account.

A batch is checked on the reader's thread (key, attributes, whether it is a deletion and whether deletions
are allowed), then applied on the stream's lane, one object at a time: the account's object under the key
decides the call (create, update of what differs, delete, or nothing), so a re-run of the same input sends no
write. Klaviyo's daily creation caps reject the rows past them, with that reason; the run goes on.

A row referring to objects not in the account yet (a segment naming a list another stream creates) waits:
its batch stays open, so no STATE passes it, until the reference resolves or, at the end of the input
(`finish`), is rejected with the reason it cannot be translated.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from typing_extensions import override

from klaviyo_core.client import AmbiguousWrite
from klaviyo_core.errors import KlaviyoAPIError, KlaviyoUserError, RateLimitExhausted
from target_klaviyo.sinks.base import KlaviyoSink
from target_klaviyo.writing.keyed import Action, KeyedObjects, Known, changes
from target_klaviyo.writing.mirror import Mirror
from target_klaviyo.writing.pipeline import Unit
from target_klaviyo.writing.rows import RowError


@dataclass
class Wanted:
    """What a row asks for: the object under `key` with `attributes` (or gone, when `deleting`)."""

    key: str
    attributes: dict[str, Any] = field(default_factory=dict)
    deleting: bool = False
    #: What a create needs besides the compared attributes (an image's URL).
    extra: dict[str, Any] = field(default_factory=dict)


Accepted = list[tuple[dict[str, Any], Wanted]]
#: The id a dry run gives an object it would create (rows referring to it resolve, as they would).
DRY_RUN_ID = "dry-run:"


def refused(exc: KlaviyoAPIError) -> RowError:
    """Klaviyo refused this object (a 4xx it would repeat): the row is rejected with its reason."""
    return RowError(f"Klaviyo refused it: {exc}")


class ObjectSink(KlaviyoSink):
    """One Klaviyo object per row, keyed by `key_attribute`; subclasses say how a row reads and how each call is
    made (`parse`, `create`, `update`, `delete`)."""

    reads_deletions = True
    #: The collection read once per run (and its sparse fields).
    collection: ClassVar[str] = ""
    fields: ClassVar[dict[str, str]] = {}
    key_attribute: ClassVar[str] = "name"
    #: The daily creation cap's reason for the rows past it.
    cap_reason: ClassVar[str] = ""
    #: An object Klaviyo cannot delete is "deleted" by updating these attributes (an image: hidden).
    hide_attributes: ClassVar[dict[str, Any]] = {}
    #: Streams writing the objects this one refers to: their lanes are idle before held rows go, at the end.
    depends_on: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.capped = False
        #: Plans on the lane and jobs in flight: `finish` waits until none is left.
        self.busy = 0
        self.idle = threading.Condition()
        self.waiting: list[tuple[Unit, Accepted]] = []
        self.mirror = Mirror()

    @cached_property
    def objects(self) -> KeyedObjects:
        return self.klaviyo.objects.of(self.collection, self.fields, self.key_attribute, self.what)

    def parse(self, row: dict[str, Any]) -> Wanted:
        raise NotImplementedError

    def resolve(self, wanted: Wanted, final: bool) -> bool:
        """Translate the row's references to the account's ids; False: not there yet, the row waits (a
        RowError when `final` and a reference cannot be translated)."""
        return True

    def create(self, wanted: Wanted) -> Known:
        raise NotImplementedError

    def update(self, known: Known, attributes: dict[str, Any]) -> None:
        raise NotImplementedError

    def delete(self, known: Known) -> None:
        raise NotImplementedError

    def wanted(self, row: dict[str, Any]) -> Wanted:
        """The row checked; a deletion only when the allow_deletes setting is on."""
        deleting = self.deleting(row)
        wanted = self.parse(row)
        wanted.deleting = deleting
        return wanted

    @override
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        """Keys are noted per table version as rows are read (an ACTIVATE_VERSION mirrors the last version)."""
        super().process_record(record, context)
        if record.get("_sdc_deleted_at") is None:
            key = str(record.get(self.key_attribute) or "").strip() or None
            self.mirror.wrote(record.get("_sdc_table_version"), key)

    @override
    def activate_version(self, new_version: int) -> None:
        """Noted only: the version's records may still be coming (`finish` acts on it)."""
        self.mirror.activate(new_version)

    def mirrored(self, known: Known) -> bool:
        """Whether a mirror may delete this object of the account (a sent campaign, a bounce: never)."""
        return True

    def delete_unwritten(self) -> None:
        """The activated version is complete: the account's objects it did not write are deleted (with
        allow_deletes; otherwise counted and reported)."""
        objects = self.objects
        with objects.lock:
            extra = self.mirror.extra(objects.keys())
            if extra is None:
                return
            found = [(key, objects.find(key)) for key in extra]
            keys = [key for key, known in found if known is not None and self.mirrored(known)]
        if not keys:
            return
        if not self.allow_deletes:
            self.not_deleted(len(keys))
            return
        rows = [{self.key_attribute: key, "_sdc_deleted_at": "ACTIVATE_VERSION"} for key in keys]
        unit = self.klaviyo.pipeline.unit(self.klaviyo.ledger.open(), len(rows))
        self.begin()
        try:
            self.plan(unit, [(row, Wanted(row[self.key_attribute], deleting=True)) for row in rows], True)
        finally:
            unit.seal()
        self.wait_idle()

    @override
    def write(self, rows: list[dict[str, Any]], unit: Unit) -> None:
        accepted = self.checked(rows, self.wanted)
        self.sent(unit, len(rows) - len(accepted))
        if accepted:
            self.begin()
            self.spawn(unit, self.plan, unit, accepted, False)

    def plan(self, unit: Unit, accepted: Accepted, final: bool) -> None:
        try:
            held = self.apply(unit, accepted, final)
            if held:
                unit.add_part()  # the batch stays open (no STATE passes it) while its rows wait
                with self.idle:
                    self.waiting.append((unit, held))
        finally:
            self.end()

    def apply(self, unit: Unit, accepted: Accepted, final: bool) -> Accepted:
        """Write each row whose references resolve; the others are returned to wait."""
        held: Accepted = []
        for row, wanted in accepted:
            try:
                if not self.resolve(wanted, final):
                    held.append((row, wanted))
                    continue
                self.count(self.apply_one(wanted).value)
            except RowError as exc:
                self.reject(row, str(exc))
            self.sent(unit, 1)
        return held

    def begin(self) -> None:
        with self.idle:
            self.busy += 1

    def end(self) -> None:
        with self.idle:
            self.busy -= 1
            self.idle.notify_all()

    @override
    def finish(self) -> None:
        """The streams this one refers to are done, and so is this one's work: the rows that waited go again
        while some resolve (one may name another waiting row's object), then the rest are rejected."""
        self.klaviyo.pipeline.wait_lanes_idle(self.depends_on)
        self.wait_idle()
        final = False
        while True:
            with self.idle:
                waiting, self.waiting = self.waiting, []
            if not waiting:
                break
            before = sum(len(rows) for _unit, rows in waiting)
            for unit, accepted in waiting:
                self.begin()
                self.plan(unit, accepted, final)
                unit.part_done()
            self.wait_idle()
            with self.idle:
                final = sum(len(rows) for _unit, rows in self.waiting) == before
        self.delete_unwritten()

    def wait_idle(self) -> None:
        pipeline = self.klaviyo.pipeline
        with self.idle:
            while self.busy and pipeline.failure is None:
                self.idle.wait(0.5)
        pipeline.raise_if_failed()

    def decide(self, wanted: Wanted) -> tuple[Action, Known | None, dict[str, Any]]:
        """(what the row asks of the account, the object there, the attributes an update sends); an object
        Klaviyo cannot delete is hidden instead (no write when it is hidden already)."""
        action, found = self.objects.decide(wanted.key, wanted.attributes, wanted.deleting)
        if found is None or action is Action.UNCHANGED:
            return action, found, wanted.attributes
        if action is Action.DELETE:
            hide = changes(self.hide_attributes, found)
            if self.hide_attributes and not hide:
                return Action.UNCHANGED, found, {}
            return action, found, hide
        return action, found, changes(wanted.attributes, found)

    def apply_one(self, wanted: Wanted) -> Action:
        """Decide against the account (under its lock: no two batches create one key) and make the call."""
        objects = self.objects
        with objects.lock:
            action, found, attributes = self.decide(wanted)
            if self.dry_run and action is Action.CREATE:
                objects.remember(wanted.key, f"{DRY_RUN_ID}{wanted.key}", wanted.attributes)  # later rows refer to it
            if self.dry_run or action is Action.UNCHANGED:
                return action
            try:
                if found is None:
                    self.create_once(wanted)
                elif action is Action.DELETE and not self.hide_attributes:
                    self.delete(found)
                    objects.forget(wanted.key)
                else:
                    self.update(found, attributes)
                    objects.remember(wanted.key, found.id, attributes)
            except KlaviyoAPIError as exc:
                if isinstance(exc, KlaviyoUserError):
                    raise
                raise refused(exc) from None
            except RateLimitExhausted as exc:  # a daily cap on updates too (segments): this row waits for tomorrow
                raise RowError(self.cap_reason or str(exc)) from None
            return action

    def create_once(self, wanted: Wanted) -> None:
        """Create, unless a cap was reached; a create that may have applied is looked for before it is sent again."""
        if self.capped:
            raise RowError(self.cap_reason)
        try:
            try:
                created = self.create(wanted)
            except AmbiguousWrite:
                self.objects.reload()
                found = self.objects.find(wanted.key)
                if found is not None:
                    self.recovered(wanted, found)
                    return
                created = self.create(wanted)
        except RateLimitExhausted:
            self.capped = True
            raise RowError(self.cap_reason) from None
        self.objects.remember(wanted.key, created.id, created.attributes)

    def recovered(self, wanted: Wanted, found: Known) -> None:
        """A create that failed unclearly had applied (`found`): finish what `create` does after its call."""

    def post(self, path: str, data: dict[str, Any]) -> Known:
        """A create call (never retried blindly: Klaviyo would make a second object)."""
        doc = self.klaviyo.client.request("POST", path, body={"data": data}, idempotent=False, what=self.what).json()
        return Known(str(doc["data"]["id"]), dict(doc["data"].get("attributes") or {}))

    def patch(self, path: str, object_type: str, known: Known, attributes: dict[str, Any]) -> None:
        body = {"data": {"type": object_type, "id": known.id, "attributes": attributes}}
        self.klaviyo.client.request("PATCH", f"{path}/{known.id}", body=body, what=self.what)


def text_of(row: dict[str, Any], name: str) -> str:
    """A required text field of the row, stripped (a RowError names it when it is missing)."""
    value = str(row.get(name) or "").strip()
    if not value:
        raise RowError(f"no {name}: it is what the object is matched by in the target account")
    return value
