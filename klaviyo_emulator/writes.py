"""The write endpoints target-klaviyo uses, applied to the account so the read endpoints serve what was written.

Bodies have passed the spec's request schema (server.py) before they get here; this module adds the rules the
schema cannot say: rows per call, bytes per call, consent rules. Bulk jobs are queued and applied after
`job_delay_s` on the emulator's clock (profile import jobs go queued -> processing -> complete and keep their
per-row import errors); event and subscription jobs answer 202 without a body, so their row failures are
invisible to the caller, as in Klaviyo.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .api import ApiError, RequestContext, invalid, not_found
from .data import AccountData
from .events import MetricDef
from .profiles import ProfileBook, now_micros, row_problem
from .records import UTC, Rec, fmt, micros, short_id
from .spec import Operation

MAX_BODY_BYTES = 5 * 1024 * 1024
PROFILE_JOB = "/api/profile-bulk-import-jobs"
EVENT_JOB = "/api/event-bulk-create-jobs"
SUBSCRIBE_JOB = "/api/profile-subscription-bulk-create-jobs"
UNSUBSCRIBE_JOB = "/api/profile-subscription-bulk-delete-jobs"
MEMBERS = "/api/lists/{id}/relationships/profiles"
#: (method, template) -> rows per call the endpoint takes.
ROW_LIMITS = {
    ("POST", PROFILE_JOB): 10_000,
    ("POST", EVENT_JOB): 1_000,
    ("POST", SUBSCRIBE_JOB): 1_000,
    ("POST", UNSUBSCRIBE_JOB): 100,
    ("POST", MEMBERS): 1_000,
    ("DELETE", MEMBERS): 1_000,
}
WRITES = {*ROW_LIMITS, ("POST", "/api/profile-import"), ("POST", "/api/lists")}


def too_large(detail: str) -> ApiError:
    return ApiError(413, "request_entity_too_large", "Request entity too large.", detail)


@dataclass
class Job:
    """A queued bulk job: applied once the emulator's clock reaches `due`."""

    kind: str
    due: float
    body: dict[str, Any]
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:22])


class WriteApi:
    """Writes into one `AccountData`; `settle()` applies the jobs whose time has come (before every request)."""

    def __init__(
        self, data: AccountData, clock: Callable[[], float] = time.monotonic, job_delay_s: float = 2.0
    ) -> None:
        self.data = data
        self.clock = clock
        self.job_delay_s = job_delay_s
        self.book = ProfileBook(data)
        self.pending: list[Job] = []
        self.rng = random.Random(f"writes:{data.seed}")
        #: (profile id, metric id, unique_id) of every event written: Klaviyo keeps the first.
        self.event_keys: set[tuple[str, str, str]] = set()
        self.counts = {"profile_imports": 0, "events_dropped": 0}

    def _bump(self) -> None:
        """A write of ours: read caches go stale, the profile index stays current (it was kept in step)."""
        current = self.book.generation == self.data.generation
        self.data.generation += 1
        if current:
            self.book.generation = self.data.generation

    @staticmethod
    def serves(op: Operation) -> bool:
        return (op.method, op.template) in WRITES

    def handle(self, op: Operation, ctx: RequestContext, raw_size: int) -> tuple[int, dict[str, Any] | bytes]:
        if raw_size > MAX_BODY_BYTES:
            raise too_large(f"The request body is {raw_size} bytes; at most 5 MB is accepted.")
        body = ctx.body if isinstance(ctx.body, dict) else {}
        limit = ROW_LIMITS.get((op.method, op.template))
        rows = self._rows(op.template, body)
        if limit is not None and len(rows) > limit:
            raise invalid(f"At most {limit} items may be sent in one request; got {len(rows)}.", pointer="/data")
        with self.data.lock:
            self.settle()
            if op.template == "/api/profile-import":
                return self._profile_import(body)
            if op.template == "/api/lists":
                return self._create_list(body)
            if op.template == MEMBERS:
                return self._members(op.method, ctx.path_params.get("id", ""), rows)
            if op.template == SUBSCRIBE_JOB:
                self._check_subscribe(body)
            if op.template in (SUBSCRIBE_JOB, UNSUBSCRIBE_JOB):
                self._list_of(body)
            job = Job(op.template, self.clock() + self.job_delay_s, body)
            self.pending.append(job)
            if op.template == PROFILE_JOB:
                return 202, self._queue_import(job, body, rows)
            return 202, b""

    @staticmethod
    def _rows(template: str, body: dict[str, Any]) -> list[Any]:
        data = body.get("data")
        if isinstance(data, list):
            return data
        attrs = (data or {}).get("attributes") or {}
        if template == EVENT_JOB:
            entries = (attrs.get("events-bulk-create") or {}).get("data") or []
            return [
                e for entry in entries for e in ((entry.get("attributes") or {}).get("events") or {}).get("data") or []
            ]
        if template in (PROFILE_JOB, SUBSCRIBE_JOB, UNSUBSCRIBE_JOB):
            return list((attrs.get("profiles") or {}).get("data") or [])
        return []

    # ---- jobs ------------------------------------------------------------------------------------
    def settle(self) -> None:
        """Apply every job that is due (the caller holds the account lock, or none is needed yet)."""
        with self.data.lock:  # request threads settle at once: each due job is taken by one of them
            now = self.clock()
            due = [job for job in self.pending if job.due <= now]
            for job in due:
                self.pending.remove(job)
                {
                    PROFILE_JOB: self._apply_import,
                    EVENT_JOB: self._apply_events,
                    SUBSCRIBE_JOB: self._apply_subscribe,
                    UNSUBSCRIBE_JOB: self._apply_unsubscribe,
                }[job.kind](job)
            self._progress(now)

    def _progress(self, now: float) -> None:
        for job in self.pending:
            rec = self.data.store.get("profile-bulk-import-job", {}).get(job.job_id)
            if rec is not None and now >= job.due - self.job_delay_s / 2 and rec.attrs["status"] == "queued":
                rec.attrs = {**rec.attrs, "status": "processing", "started_at": fmt(now_micros())}

    def _queue_import(self, job: Job, body: dict[str, Any], rows: list[Any]) -> dict[str, Any]:
        lists = ((body["data"].get("relationships") or {}).get("lists") or {}).get("data") or []
        for item in lists:
            if item.get("id") not in self.data.store.get("list", {}):
                raise not_found(f"A list with id {item.get('id')} was not found.")
        stamp = fmt(now_micros())
        attrs = {
            "status": "queued",
            "created_at": stamp,
            "total_count": len(rows),
            "completed_count": 0,
            "failed_count": 0,
            "completed_at": None,
            "expires_at": fmt(now_micros() + 7 * 86_400 * 1_000_000),
            "started_at": None,
        }
        rels = {"lists": [item["id"] for item in lists], "profiles": [], "import-errors": []}
        rec = Rec("profile-bulk-import-job", job.job_id, attrs, rels)
        self.data.store.setdefault("profile-bulk-import-job", {})[job.job_id] = rec
        self._bump()
        self.counts["profile_imports"] += 1
        return {"data": {"type": rec.type, "id": rec.id, "attributes": attrs, "links": {"self": ""}}}

    def _apply_import(self, job: Job) -> None:
        rec = self.data.store["profile-bulk-import-job"][job.job_id]
        failed, done = 0, 0
        for pos, row in enumerate(self._rows(PROFILE_JOB, job.body)):
            attrs = row.get("attributes") or {}
            problem = row_problem(attrs)
            if problem is not None:
                failed += 1
                self._import_error(rec, pos, problem, row)
                continue
            pid, _created = self.book.upsert(attrs, clear_nulls=False)
            rec.rels["profiles"].append(pid)
            for list_id in rec.rels["lists"]:
                self._add_member(list_id, pid)
            done += 1
        rec.attrs = {**rec.attrs, "status": "complete", "completed_count": done, "failed_count": failed}
        rec.attrs["completed_at"] = fmt(now_micros())
        self._bump()

    def _import_error(self, job: Rec, pos: int, problem: tuple[str, str], row: dict[str, Any]) -> None:
        pointer, detail = problem
        eid = str(uuid.UUID(int=self.rng.getrandbits(128)))
        attrs = {
            "code": "invalid",
            "title": "Invalid input.",
            "detail": detail,
            "source": {"pointer": f"/data/attributes/profiles/data/{pos}{pointer}"},
            "original_payload": row.get("attributes") or {},
        }
        self.data.store.setdefault("import-error", {})[eid] = Rec("import-error", eid, attrs)
        job.rels["import-errors"].append(eid)

    def _apply_events(self, job: Job) -> None:
        attrs = job.body["data"]["attributes"]
        for entry in attrs["events-bulk-create"]["data"]:
            entry_attrs = entry["attributes"]
            profile = entry_attrs["profile"]["data"].get("attributes") or {}
            events = entry_attrs["events"]["data"]
            if row_problem(profile) is not None:
                self.counts["events_dropped"] += len(events)  # Klaviyo drops them; the 202 said nothing
                continue
            pid, _ = self.book.upsert(profile, clear_nulls=False)
            for event in events:
                self._add_event(pid, event["attributes"])

    def _add_event(self, pid: str, attrs: dict[str, Any]) -> None:
        metric = (attrs.get("metric") or {}).get("data", {}).get("attributes", {}).get("name")
        if not metric:
            self.counts["events_dropped"] += 1
            return
        mid = self._metric(str(metric))
        stamp = str(attrs["time"]).replace("Z", "+00:00") if attrs.get("time") else None
        when = micros(datetime.fromisoformat(stamp)) if stamp else now_micros()
        when -= when % 1_000_000  # Klaviyo: "The time is truncated to the second"
        unique = str(attrs.get("unique_id") or fmt(when))  # Klaviyo's fallback key: the time, to the second
        key = (pid, mid, unique)
        if key in self.event_keys:
            return
        self.event_keys.add(key)
        props = dict(attrs.get("properties") or {})
        if attrs.get("value") is not None:
            props["$value"] = attrs["value"]
        self.data.events.append(when, mid, pid, props)
        self._bump()

    def _metric(self, name: str) -> str:
        for rec in self.data.store.get("metric", {}).values():
            if rec.attrs.get("name") == name:
                return rec.id
        mid = short_id(self.rng)
        stamp = fmt(now_micros())
        integration = {"object": "integration", "id": "7FtS4J", "key": "api", "name": "API", "category": "API"}
        attrs = {"name": name, "created": stamp, "updated": stamp, "integration": integration}
        self.data.store.setdefault("metric", {})[mid] = Rec("metric", mid, attrs, {"flow-triggers": []})
        store = self.data.events
        store.metric_ids.append(mid)
        store.metric_defs.append(MetricDef(name, "api", 0, "site"))
        store.metric_index[mid] = len(store.metric_ids) - 1
        return mid

    # ---- lists and memberships -------------------------------------------------------------------
    def _create_list(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        attrs = body["data"]["attributes"]
        lid = short_id(self.rng)
        stamp = fmt(now_micros())
        values = {
            "name": attrs["name"],
            "created": stamp,
            "updated": stamp,
            "opt_in_process": attrs.get("opt_in_process") or "single_opt_in",
        }
        self.data.store.setdefault("list", {})[lid] = Rec("list", lid, values, {"tags": [], "flow-triggers": []})
        self.data.members["list"][lid] = {}
        self._bump()
        return 201, {"data": {"type": "list", "id": lid, "attributes": values, "links": {"self": ""}}}

    def _members(self, method: str, list_id: str, rows: list[Any]) -> tuple[int, bytes]:
        if list_id not in self.data.store.get("list", {}):
            raise not_found(f"A list with id {list_id} was not found.")
        for row in rows:
            pid = str(row.get("id") or "")
            if pid not in self.data.store["profile"]:
                raise invalid(f"Profile {pid} does not exist.", pointer="/data")
        for row in rows:
            if method == "POST":
                self._add_member(list_id, row["id"])
            else:
                self.data.members["list"].get(list_id, {}).pop(row["id"], None)
        self._bump()
        return 204, b""

    def _add_member(self, list_id: str, pid: str) -> None:
        members = self.data.members["list"].setdefault(list_id, {})
        if pid not in members:
            now = now_micros()
            members[pid] = now - now % 1_000_000
            self._bump()

    def _list_of(self, body: dict[str, Any]) -> str | None:
        rel = ((body["data"].get("relationships") or {}).get("list") or {}).get("data") or {}
        list_id = rel.get("id")
        if list_id is not None and list_id not in self.data.store.get("list", {}):
            raise not_found(f"A list with id {list_id} was not found.")
        return str(list_id) if list_id else None

    # ---- consent ---------------------------------------------------------------------------------
    def _check_subscribe(self, body: dict[str, Any]) -> None:
        attrs = body["data"]["attributes"]
        if not attrs.get("historical_import"):
            return
        now = now_micros()
        for pos, row in enumerate(attrs["profiles"]["data"]):
            for channel, params in (row["attributes"].get("subscriptions") or {}).items():
                at = ((params or {}).get("marketing") or {}).get("consented_at")
                pointer = f"/data/attributes/profiles/data/{pos}/attributes/subscriptions/{channel}/marketing"
                if not at:
                    raise invalid("consented_at is required when historical_import is true.", pointer=pointer)
                if micros(datetime.fromisoformat(str(at).replace("Z", "+00:00"))) > now:
                    raise invalid("consented_at must be in the past for a historical import.", pointer=pointer)

    def _apply_subscribe(self, job: Job) -> None:
        attrs = job.body["data"]["attributes"]
        list_id = self._list_of(job.body)
        rec_list = self.data.store["list"].get(list_id) if list_id else None
        double = rec_list is not None and rec_list.attrs.get("opt_in_process") == "double_opt_in"
        for row in attrs["profiles"]["data"]:
            row_attrs = row["attributes"]
            ids = {k: row_attrs.get(k) for k in ("email", "phone_number") if row_attrs.get(k)}
            if row_problem(ids) is not None:
                continue
            pid, _ = self.book.upsert(ids, clear_nulls=False)
            if double and not attrs.get("historical_import"):
                continue  # waits for the confirmation message
            for channel, params in (row_attrs.get("subscriptions") or {}).items():
                at = ((params or {}).get("marketing") or {}).get("consented_at")
                self._consent(pid, channel, "SUBSCRIBED", at)
            if list_id:
                self._add_member(list_id, pid)

    def _apply_unsubscribe(self, job: Job) -> None:
        list_id = self._list_of(job.body)
        for row in job.body["data"]["attributes"]["profiles"]["data"]:
            row_attrs = row["attributes"]
            ids = {k: row_attrs.get(k) for k in ("email", "phone_number") if row_attrs.get(k)}
            if row_problem(ids) is not None:
                continue
            pid, _ = self.book.upsert(ids, clear_nulls=False)
            members = self.data.members["list"].get(list_id or "", {})
            for channel in row_attrs.get("subscriptions") or {}:
                if list_id and pid in members:
                    members.pop(pid)  # off this list only
                else:
                    self._consent(pid, channel, "UNSUBSCRIBED", None)  # Klaviyo: off everything of the channel
            self._bump()

    def _consent(self, pid: str, channel: str, consent: str, at: Any) -> None:
        rec = self.data.store["profile"][pid]
        subs = {**(rec.attrs.get("subscriptions") or {})}
        chan = {**(subs.get(channel) or {})}
        marketing = {**(chan.get("marketing") or {})}
        stamp = str(at) if at else fmt(now_micros())
        marketing.update(consent=consent, consent_timestamp=stamp, last_updated=stamp, method="API")
        marketing[f"can_receive_{channel}_marketing"] = consent == "SUBSCRIBED"
        chan["marketing"] = marketing
        subs[channel] = chan
        rec.attrs = {**rec.attrs, "subscriptions": subs, "updated": fmt(now_micros())}
        self._bump()

    # ---- the single upsert -----------------------------------------------------------------------
    def _profile_import(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        attrs = body["data"].get("attributes") or {}
        problem = row_problem(attrs)
        if problem is not None:
            raise invalid(problem[1], pointer=f"/data{problem[0]}")
        pid, created = self.book.upsert(attrs, clear_nulls=True)
        rec = self.data.store["profile"][pid]
        doc = {"data": {"type": "profile", "id": pid, "attributes": dict(rec.attrs), "links": {"self": ""}}}
        return (201 if created else 200), doc


def empty_account(data: AccountData) -> AccountData:
    """A new account: nothing but the account record (no profiles, events, metrics, lists or segments)."""
    with data.lock:
        account = data.store.get("account", {})
        data.store = {"account": account}
        data.members = {"list": {}, "segment": {}}
        store = data.events
        store.n = 0
        store.metric_ids, store.metric_defs, store.metric_index = [], [], {}
        store.profile_ids, store.profile_index = [], {}
        store._extras, store._extra_keys, store._extra_by_idx = [], [], {}
        data._future_ids = []
        data.generation += 1
    return data


__all__ = ["UTC", "WriteApi", "empty_account"]
