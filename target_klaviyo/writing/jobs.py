"""Bulk jobs in flight, watched by one poller for the whole run.

Klaviyo documents no completion time for its bulk jobs (seconds to hours), so there is no deadline: the poller
asks less often as jobs age (a twentieth of the youngest job's age, between `job_poll_interval` and 30 s).
One request per tick covers every job of a kind: the newest jobs of that kind, whose attributes say which of
ours completed (its counts; then its errors when some rows failed). Kinds whose listing cannot be sorted
list their running jobs instead (catalog and suppression job lists filter with `equals` only: one listing for
queued, one for processing), and a job missing from that list is read once. A profile import's errors are
read from its import-errors, a catalog job's from its attributes.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from klaviyo_core.client import KlaviyoClient
from klaviyo_core.documents import encode_document
from target_klaviyo.writing.pipeline import HeldRows, Pipeline, Unit

PROFILE_IMPORTS = "/api/profile-bulk-import-jobs"
_PROFILE_ROW = re.compile(r"/data/attributes/profiles/data/(\d+)")
_JOB_ROW = re.compile(r"/data/attributes/\w+/data/(\d+)")
MAX_TICK_S = 30.0
NEWEST_FIRST = {"sort": "-created_at", "page[size]": "100"}
#: A tick comes after this share of the youngest job's age (at least `job_poll_interval`, at most 30 s): a job
#: is seen complete at most about 5 % of its age after it completed.
AGE_SHARE = 20
#: The running jobs of a kind that cannot be listed newest first (catalog and suppression job lists filter with
#: `equals` only, and take no page size): one listing per running status.
RUNNING_LISTINGS = ({"filter": 'equals(status,"queued")'}, {"filter": 'equals(status,"processing")'})


#: What a sink does with a completed job: (its rows as read, position -> reason for those Klaviyo refused).
Confirmed = Callable[[list[Any], dict[int, str]], None]


class JobFailed(Exception):
    """A bulk job Klaviyo cancelled: its rows are not confirmed, the run stops before any STATE passes them."""


@dataclass
class Job:
    """One job in flight: where it is read, and what to do with its final attributes (on the poller's thread)."""

    collection: str
    job_id: str
    submitted_at: float
    finished: Callable[[dict[str, Any]], None]
    what: str
    kind: str = "job"
    #: A listing of this kind's jobs, newest first, whose attributes say each one's end: one request a tick
    #: reads every job of the run (None: list the running ones, and read each that left that list).
    newest_first: dict[str, str] | None = None


def attribute_errors(attributes: dict[str, Any]) -> dict[int, str]:
    """Row position -> Klaviyo's reason, from the `errors` a completed catalog job carries in its attributes
    (each points at its object: /data/attributes/<items|variants|categories>/data/<position>/...)."""
    failed: dict[int, str] = {}
    for error in attributes.get("errors") or []:
        match = _JOB_ROW.match(str((error.get("source") or {}).get("pointer") or ""))
        if match:
            detail = str(error.get("detail") or error.get("title") or "job error")
            failed.setdefault(int(match.group(1)), f"Klaviyo job error: {detail}")
    return failed


def profile_import_errors(client: KlaviyoClient, job_id: str, what: str) -> dict[int, str]:
    """Row position -> Klaviyo's reason, from a completed profile import job's import errors."""
    failed: dict[int, str] = {}
    for error in client.pages(f"{PROFILE_IMPORTS}/{job_id}/import-errors", {"page[size]": "100"}, what):
        attributes = error.get("attributes") or {}
        pointer = str((attributes.get("source") or {}).get("pointer") or "")
        match = _PROFILE_ROW.match(pointer)
        detail = str(attributes.get("detail") or attributes.get("title") or "import error")
        if match:
            failed[int(match.group(1))] = f"Klaviyo import error: {detail}"
    return failed


@dataclass
class JobPoller:
    """One thread polling every job of the run (started with the first job)."""

    client: KlaviyoClient
    pipeline: Pipeline
    first_interval: float
    jobs: dict[str, Job] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)
    thread: threading.Thread | None = None

    def watch(self, job: Job) -> None:
        with self.changed:
            self.jobs[job.job_id] = job
            if self.thread is None:
                self.thread = threading.Thread(target=self.run, name="job-poller", daemon=True)
                self.thread.start()
            self.changed.notify_all()

    def run(self) -> None:
        try:
            self.loop()
        except BaseException as exc:  # handed to the reader, which ends the run with it
            self.pipeline.fail(exc)

    def loop(self) -> None:
        clock = self.client.clock
        while True:
            with self.changed:
                while not self.jobs and not self.pipeline.closed:
                    self.changed.wait(0.5)
                if self.pipeline.closed or self.pipeline.failure is not None:
                    return
                youngest = max(job.submitted_at for job in self.jobs.values())
            age = clock.monotonic() - youngest
            clock.sleep(min(MAX_TICK_S, max(self.first_interval, age / AGE_SHARE)))
            self.tick()

    def tick(self) -> None:
        """One listing per kind of job in flight, then a read of each job the listing did not settle."""
        with self.changed:
            watched = list(self.jobs.values())
        for collection in sorted({job.collection for job in watched}):
            jobs = {job.job_id: job for job in watched if job.collection == collection}
            first = next(iter(jobs.values()))
            if first.newest_first is not None:
                unseen = self.newest(collection, jobs, first.newest_first, first.what)
            else:
                running: set[str] = set()
                for params in RUNNING_LISTINGS:
                    running.update(str(item.get("id")) for item in self.client.pages(collection, params, first.what))
                unseen = [job for job_id, job in jobs.items() if job_id not in running]
            for job in unseen:
                self.read(job)

    def newest(self, collection: str, jobs: dict[str, Job], params: dict[str, str], what: str) -> list[Job]:
        """The newest jobs' pages until every job of ours is seen: each one's end from its attributes there.
        The jobs not found (older than the pages allow, or not listed yet) are left to be read one by one."""
        waiting = dict(jobs)
        for item in self.client.resources(collection, params, what):
            job = waiting.pop(str(item.get("id")), None)
            if job is not None:
                self.ended(job, item.get("attributes") or {})
            if not waiting:
                break
        return list(waiting.values())

    def read(self, job: Job) -> None:
        doc = self.client.request("GET", f"{job.collection}/{job.job_id}", what=job.what).json()
        self.ended(job, (doc.get("data") or {}).get("attributes") or {})

    def ended(self, job: Job, attributes: dict[str, Any]) -> None:
        """A job whose attributes were read: finished when complete, the run stopped when cancelled."""
        status = str(attributes.get("status"))
        if status == "cancelled":
            raise JobFailed(f"{job.what}: Klaviyo cancelled {job.kind} {job.job_id}; its rows were not written")
        if status != "complete":
            return  # not listed yet (or any more) but not ended: asked again next tick
        with self.changed:
            self.jobs.pop(job.job_id, None)
        job.finished(attributes)

    def prepare_profile_import(
        self, unit: Unit, part: list[tuple[dict[str, Any], dict[str, Any]]], list_id: str | None = None
    ) -> tuple[bytes, HeldRows]:
        """One job's body, and its rows compressed: from here the rows wait as bytes (counted against memory's
        limit), so the reader goes on while Klaviyo takes its time to accept the job."""
        held = HeldRows([row for row, _ in part])
        data: dict[str, Any] = {
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": [{"type": "profile", "attributes": attrs} for _, attrs in part]}},
        }
        if list_id is not None:
            data["relationships"] = {"lists": {"data": [{"type": "list", "id": list_id}]}}
        body = encode_document({"data": data})
        self.pipeline.hold_bytes(len(body) + len(held.blob))
        self.pipeline.sent(unit, len(part))
        return body, held

    def submit_profile_import(self, unit: Unit, body: bytes, held: HeldRows, what: str, confirmed: Confirmed) -> None:
        """One profile bulk import job (prepared above), confirmed when Klaviyo completes it.

        Upserts are safe to repeat: a submission retried after an unclear failure is another job doing the same.
        The unit stays open (a part) until the job is complete and its errors read.
        """
        response = self.client.request("POST", PROFILE_IMPORTS, body=body, what=what)
        job_id = str(response.json()["data"]["id"])
        self.pipeline.hold_bytes(-len(body))

        def done(attributes: dict[str, Any]) -> None:
            failed = profile_import_errors(self.client, job_id, what) if attributes.get("failed_count") else {}
            confirmed(held.rows() if failed else [None] * held.count, failed)
            self.pipeline.hold_bytes(-len(held.blob))

        job = Job(
            PROFILE_IMPORTS, job_id, self.client.clock.monotonic(), done, what, "profile import job", NEWEST_FIRST
        )
        self.watch_part(unit, job)

    def submit(
        self,
        unit: Unit,
        collection: str,
        data: dict[str, Any],
        *,
        rows: int,
        what: str,
        kind: str,
        done: Callable[[dict[str, Any]], None],
    ) -> None:
        """One bulk job (catalog, suppression) of `rows` input rows: the unit stays open (a part) until Klaviyo
        completes it and `done(attributes)` has confirmed or rejected its rows (on the poller's thread).

        Submissions are retried after an unclear failure: a job is a batch of upserts or deletions, which a
        second job repeats harmlessly (catalog creates: see the catalog sinks)."""
        response = self.client.request("POST", collection, body={"data": data}, what=what)
        self.pipeline.sent(unit, rows)
        job_id = str(response.json()["data"]["id"])
        self.watch_part(unit, Job(collection, job_id, self.client.clock.monotonic(), done, what, kind))

    def watch_part(self, unit: Unit, job: Job) -> None:
        """The job is a part of the unit until Klaviyo completes it and its `finished` has confirmed its rows."""
        unit.add_part()
        confirm = job.finished

        def finished(attributes: dict[str, Any]) -> None:
            confirm(attributes)
            unit.part_done()

        self.watch(replace(job, finished=finished))
