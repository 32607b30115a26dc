"""Objects written through Klaviyo's bulk jobs (catalog objects, suppressions), matched by key.

A batch is decided against the account like any object (`ObjectSink.decide`), then each kind of change goes
out in jobs of at most 100 objects, watched by the run's one job poller; a job's per-object errors reject
those rows with Klaviyo's reason. Rows that refer to objects not yet in the account (an item's categories
still in a job) wait, at the latest until the end of the input (`finish`), when what still does not resolve
is rejected with that reason.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, ClassVar

from typing_extensions import override

from target_klaviyo.sinks.objects import DRY_RUN_ID, Accepted, ObjectSink, Wanted
from target_klaviyo.writing.jobs import attribute_errors
from target_klaviyo.writing.keyed import Action, Known
from target_klaviyo.writing.pipeline import Unit
from target_klaviyo.writing.rows import MAX_BODY_BYTES, RowError, chunks, size_of

OBJECTS_PER_JOB = 100
#: A create job's error for an object that exists: only an earlier, unclear submission of this run made it
#: (the account was read first and did not have it).
ALREADY_EXISTS = "already exists"


@dataclass
class Planned:
    """One object of a job: its row, what it asks, and its id in the account (None: to be created)."""

    row: dict[str, Any]
    wanted: Wanted
    object_id: str | None
    attributes: dict[str, Any]


class BulkObjectSink(ObjectSink):
    """Subclasses give the job collections (`job_path`), each job's body (`job_data`) and how references resolve
    (`resolve`)."""

    job_kind: ClassVar[str] = "bulk job"

    def job_path(self, action: Action) -> str:
        raise NotImplementedError

    def job_data(self, action: Action, part: list[Planned]) -> dict[str, Any]:
        raise NotImplementedError

    def object_id(self, wanted: Wanted) -> str:
        """The id an object created from `wanted` will have."""
        raise NotImplementedError

    @override
    def apply(self, unit: Unit, accepted: Accepted, final: bool) -> Accepted:
        """Decide every row, then send each kind of change in jobs; the rows whose references wait are returned."""
        groups: dict[Action, list[Planned]] = defaultdict(list)
        held: Accepted = []
        objects = self.objects
        with objects.lock:
            for row, wanted in accepted:
                try:
                    if not self.resolve(wanted, final):
                        held.append((row, wanted))
                        continue
                    action, found, attributes = self.decide(wanted)
                    object_id = found.id if found is not None else self.object_id(wanted)
                except RowError as exc:
                    self.reject(row, str(exc))
                    self.sent(unit, 1)
                    continue
                if self.dry_run or action is Action.UNCHANGED:
                    if self.dry_run and action is Action.CREATE:
                        objects.remember(wanted.key, f"{DRY_RUN_ID}{wanted.key}", wanted.attributes)
                    self.count(action.value)
                    self.sent(unit, 1)
                    continue
                if action is Action.DELETE:
                    objects.forget(wanted.key)
                else:
                    objects.expect(wanted.key, object_id, attributes)
                groups[action].append(Planned(row, wanted, None if found is None else object_id, attributes))
        for action, planned in groups.items():
            for part in chunks(planned, OBJECTS_PER_JOB, MAX_BODY_BYTES, size=lambda p: size_of(p.attributes)):
                self.begin()
                self.spawn(unit, self.submit, unit, action, part)
        return held

    def submit(self, unit: Unit, action: Action, part: list[Planned]) -> None:
        def done(attributes: dict[str, Any]) -> None:
            try:
                self.confirm(action, part, attribute_errors(attributes))
            finally:
                self.end()

        try:
            data = self.job_data(action, part)
            poller = self.klaviyo.poller
            poller.submit(
                unit, self.job_path(action), data, rows=len(part), what=self.what, kind=self.job_kind, done=done
            )
        except BaseException:
            self.end()
            raise

    def confirm(self, action: Action, part: list[Planned], failed: dict[int, str]) -> None:
        """A job is complete: each object it failed rejects its row, the others are counted."""
        written = 0
        for position, planned in enumerate(part):
            reason = failed.get(position)
            if reason is not None and not (action is Action.CREATE and ALREADY_EXISTS in reason):
                self.reject(planned.row, reason)
                self.objects.settle(planned.wanted.key, written=False)
                continue
            written += 1
            if action is not Action.DELETE:
                self.objects.settle(planned.wanted.key, written=True)
        self.count(action.value, written)


def reference(known: Known | None, what: str, final: bool) -> str | None:
    """The account's id of a referred object; None: wait for it (a RowError when `final`)."""
    if known is not None:
        return known.id
    if final:
        raise RowError(f"{what} is not in the target account (nor written by this run)")
    return None
