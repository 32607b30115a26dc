"""Profile bulk import jobs: submitted together, polled together until each completes, errors collected.

A batch is confirmed written only when every job of it is `complete` and its import errors are read: those
errors point at rows by position (`/data/attributes/profiles/data/<n>`), which map back to input rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tap_klaviyo.api.client import KlaviyoClient

JOBS = "/api/profile-bulk-import-jobs"
_ROW = re.compile(r"/data/attributes/profiles/data/(\d+)")
#: A job that ends cancelled, or is still not complete after this many polls, fails the batch.
MAX_POLLS = 2000


class JobFailed(Exception):
    """A bulk job Klaviyo cancelled or never finished: the batch is not confirmed."""


@dataclass
class ImportJob:
    """One submitted job: the rows it holds (in order) and, once complete, which failed and why."""

    job_id: str
    rows: list[Any]
    status: str = "queued"
    failed: dict[int, str] = field(default_factory=dict)


class ProfileImports:
    """Submit and poll profile bulk import jobs on one client."""

    def __init__(self, client: KlaviyoClient, poll_interval: float, what: str) -> None:
        self.client = client
        self.poll_interval = poll_interval
        self.what = what

    def submit(self, profiles: list[dict[str, Any]], rows: list[Any]) -> ImportJob:
        """Upserts are safe to repeat: a retried submission after an unclear failure is another job doing the same."""
        body = {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": profiles}}}}
        response = self.client.request("POST", JOBS, body=body, what=self.what)
        return ImportJob(str(response.json()["data"]["id"]), rows)

    def wait(self, jobs: list[ImportJob]) -> None:
        """Poll every job until complete (all of them each round), then read each one's import errors."""
        pending = list(jobs)
        for _ in range(MAX_POLLS):
            still = []
            for job in pending:
                doc = self.client.request("GET", f"{JOBS}/{job.job_id}", what=self.what).json()
                attributes = doc["data"]["attributes"]
                job.status = str(attributes.get("status"))
                if job.status == "cancelled":
                    raise JobFailed(f"{self.what}: Klaviyo cancelled profile import job {job.job_id}")
                if job.status == "complete":
                    if attributes.get("failed_count"):
                        self._errors(job)
                else:
                    still.append(job)
            pending = still
            if not pending:
                return
            self.client.clock.sleep(self.poll_interval)
        raise JobFailed(f"{self.what}: {len(pending)} profile import jobs did not complete; run again later")

    def _errors(self, job: ImportJob) -> None:
        path = f"{JOBS}/{job.job_id}/import-errors"
        for error in self.client.pages(path, {"page[size]": "100"}, self.what):
            attributes = error.get("attributes") or {}
            pointer = str((attributes.get("source") or {}).get("pointer") or "")
            match = _ROW.match(pointer)
            detail = str(attributes.get("detail") or attributes.get("title") or "import error")
            if match and int(match.group(1)) < len(job.rows):
                job.failed[int(match.group(1))] = f"Klaviyo import error: {detail}"
