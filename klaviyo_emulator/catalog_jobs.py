"""Bulk jobs for the catalog (categories, items, variants) and for email suppressions.

A POST answers 202 with the job (status `queued`); the job is applied once the emulator's clock has moved
`job_delay_s` past it (`processing` from half-way), and GET on the job then shows `complete` with its counts.
Catalog jobs keep one error per failed object in the job's `errors` attribute (Klaviyo's APIJobErrorPayload,
pointing at the object in the request); suppression jobs count what they skipped. Limits: 100 objects or
emails a job; at most 500 catalog jobs in progress (past it: 429, assumed).
"""

from __future__ import annotations

import math
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .api import ApiError, RequestContext, invalid, not_found
from .data import AccountData
from .objects import body_data, resource_doc
from .profiles import ProfileBook, now_micros, row_problem
from .records import Rec, fmt
from .spec import Operation, get_spec

MAX_OBJECTS = 100
MAX_IN_PROGRESS = 500
_CATALOG_JOB = re.compile(r"^/api/catalog-(item|variant|category)-bulk-(create|update|delete)-jobs$")
SUPPRESS = "/api/profile-suppression-bulk-create-jobs"
UNSUPPRESS = "/api/profile-suppression-bulk-delete-jobs"
#: Catalog kind -> (resource type, the body's / job's collection name).
KINDS = {
    "item": ("catalog-item", "items"),
    "variant": ("catalog-variant", "variants"),
    "category": ("catalog-category", "categories"),
}
ID_PREFIX = "$custom:::$default:::"
USER_SUPPRESSED = "USER_SUPPRESSED"


@dataclass
class BulkJob:
    """A queued job: its record (what GET answers) and the rows to apply at `due`."""

    template: str
    rec: Rec
    rows: list[dict[str, Any]]
    due: float
    group: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)


class BulkJobs:
    """Catalog and suppression bulk jobs on one `AccountData`, timed by the emulator's clock."""

    def __init__(
        self,
        data: AccountData,
        book: ProfileBook,
        clock: Callable[[], float] = time.monotonic,
        job_delay_s: float = 2.0,
    ) -> None:
        self.data = data
        self.book = book
        self.clock = clock
        self.job_delay_s = job_delay_s
        self.max_in_progress = MAX_IN_PROGRESS
        self.pending: list[BulkJob] = []
        self.rng = random.Random(f"bulk-jobs:{data.seed}")

    @staticmethod
    def serves(op: Operation) -> bool:
        return op.method == "POST" and (bool(_CATALOG_JOB.match(op.template)) or op.template in (SUPPRESS, UNSUPPRESS))

    def handle(self, op: Operation, ctx: RequestContext) -> tuple[int, dict[str, Any] | bytes]:
        data = body_data(ctx)
        attrs = data.get("attributes") or {}
        with self.data.lock:
            self.settle()
            if op.template in (SUPPRESS, UNSUPPRESS):
                rows, group = self._suppression_rows(data, attrs)
            else:
                rows, group = attrs[KINDS[self._kind(op.template)][1]]["data"], None
                self._check_in_progress()
            if len(rows) > MAX_OBJECTS:
                raise invalid(
                    f"At most {MAX_OBJECTS} objects may be sent in one job; got {len(rows)}.", pointer="/data"
                )
            assert op.data is not None
            job = self._queue(op, rows, group)
            return 202, resource_doc(op, ctx, self.data, job.rec)

    @staticmethod
    def _kind(template: str) -> str:
        found = _CATALOG_JOB.match(template)
        assert found is not None
        return found.group(1)

    def _check_in_progress(self) -> None:
        running = sum(1 for job in self.pending if _CATALOG_JOB.match(job.template))
        if running >= self.max_in_progress:
            wait = max(1, math.ceil(min(job.due for job in self.pending) - self.clock()))
            raise ApiError(
                429,
                "throttled",
                "Too many jobs in progress.",
                f"{running} catalog jobs are in progress; at most {self.max_in_progress} are allowed. "
                f"Expected available in {wait} seconds.",
            )

    def _suppression_rows(self, data: dict[str, Any], attrs: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        rows = list((attrs.get("profiles") or {}).get("data") or [])
        rels = data.get("relationships") or {}
        groups = [(kind, (rels.get(kind) or {}).get("data")) for kind in ("list", "segment")]
        named = [(kind, ref["id"]) for kind, ref in groups if ref]
        if bool(rows) + len(named) != 1:
            raise invalid("Give either profiles (emails) or one list or one segment.", pointer="/data")
        if named:
            kind, gid = named[0]
            if gid not in self.data.store.get(kind, {}):
                raise not_found(f"A {kind} with id {gid} was not found.")
            return [], f"{kind}:{gid}"
        return rows, None

    def _queue(self, op: Operation, rows: list[dict[str, Any]], group: str | None) -> BulkJob:
        assert op.data is not None
        now = now_micros()
        jid = str(uuid.UUID(int=self.rng.getrandbits(128)))
        attrs: dict[str, Any] = {
            "status": "queued",
            "created_at": fmt(now),
            "total_count": len(rows),
            "completed_count": 0,
            "completed_at": None,
        }
        if "errors" in op.data.attributes:
            attrs.update(failed_count=0, errors=[], expires_at=fmt(now + 7 * 86_400 * 1_000_000))
        else:
            attrs["skipped_count"] = 0
        rels: dict[str, Any] = {name: [] for name in op.data.relationships}
        if group is not None:
            kind, gid = group.split(":", 1)
            rels[f"{kind}s"] = [gid]
        rec = Rec(op.data.type, jid, attrs, rels)
        self.data.store.setdefault(rec.type, {})[jid] = rec
        job = BulkJob(op.template, rec, rows, self.clock() + self.job_delay_s, group)
        self.pending.append(job)
        self.data.generation += 1
        return job

    # ---- applying --------------------------------------------------------------------------------
    def settle(self) -> None:
        now = self.clock()
        with self.data.lock:
            for job in list(self.pending):
                if job.due <= now:
                    self.pending.remove(job)
                    self._apply(job)
                elif now >= job.due - self.job_delay_s / 2 and job.rec.attrs["status"] == "queued":
                    job.rec.attrs = {**job.rec.attrs, "status": "processing"}
                    self.data.generation += 1

    def _apply(self, job: BulkJob) -> None:
        if job.template in (SUPPRESS, UNSUPPRESS):
            done, skipped = self._apply_suppressions(job)
            extra: dict[str, Any] = {"skipped_count": skipped}
        else:
            kind = self._kind(job.template)
            action = job.template.split("-bulk-")[1].split("-")[0]
            done = 0
            errors: list[dict[str, Any]] = []
            collection = KINDS[kind][1]
            for pos, row in enumerate(job.rows):
                problem = CatalogRows(self.data, kind).apply(action, row)
                if problem is None:
                    done += 1
                    job.rec.rels[collection].append(row.get("id") or ID_PREFIX + row["attributes"]["external_id"])
                    continue
                suffix, detail = problem
                errors.append(self._error(detail, f"/data/attributes/{collection}/data/{pos}{suffix}"))
            extra = {"failed_count": len(errors), "errors": errors}
        job.rec.attrs = {
            **job.rec.attrs,
            **extra,
            "status": "complete",
            "completed_count": done,
            "completed_at": fmt(now_micros()),
        }
        self.data.generation += 1

    def _error(self, detail: str, pointer: str) -> dict[str, Any]:
        eid = str(uuid.UUID(int=self.rng.getrandbits(128)))
        return {
            "id": eid,
            "code": "invalid",
            "title": "Invalid input.",
            "detail": detail,
            "source": {"pointer": pointer},
        }

    def _apply_suppressions(self, job: BulkJob) -> tuple[int, int]:
        emails = [str(row["attributes"]["email"]) for row in job.rows]
        if job.group is not None:  # its members now; one without an email is skipped
            kind, gid = job.group.split(":", 1)
            profiles = self.data.store.get("profile", {})
            members = list(self.data.members[kind].get(gid, {}))
            emails = [str(profiles[pid].attrs.get("email") or "") for pid in members]
            job.rec.attrs = {**job.rec.attrs, "total_count": len(emails)}
        done = skipped = 0
        for email in emails:
            if row_problem({"email": email}) is not None:
                skipped += 1
                continue
            pid = self.book.find({"email": email})
            if pid is None and job.template == UNSUPPRESS:
                skipped += 1
                continue
            if pid is None:
                pid, _ = self.book.upsert({"email": email}, clear_nulls=False)
            if self._suppress(pid, job.template == SUPPRESS):
                done += 1
            else:
                skipped += 1
        return done, skipped

    def _suppress(self, pid: str, on: bool) -> bool:
        """Add (or remove, USER_SUPPRESSED only) a profile's global email suppression; False when nothing changed."""
        rec = self.data.store["profile"][pid]
        subs = {**(rec.attrs.get("subscriptions") or {})}
        email = {**(subs.get("email") or {})}
        marketing = {**(email.get("marketing") or {})}
        entries = list(marketing.get("suppression") or [])
        if on:
            if entries:
                return False
            stamp = fmt(now_micros())
            entries = [{"reason": USER_SUPPRESSED, "timestamp": stamp}]
        else:
            kept = [e for e in entries if e.get("reason") != USER_SUPPRESSED]
            if len(kept) == len(entries):
                return False
            entries = kept
        marketing["suppression"] = entries
        marketing["can_receive_email_marketing"] = marketing.get("consent") == "SUBSCRIBED" and not entries
        email["marketing"] = marketing
        subs["email"] = email
        rec.attrs = {**rec.attrs, "subscriptions": subs, "updated": fmt(now_micros())}
        self.data.generation += 1
        return True


class CatalogRows:
    """One catalog object of a job applied to the account: (pointer suffix, detail) when Klaviyo would fail it."""

    def __init__(self, data: AccountData, kind: str) -> None:
        self.data = data
        self.kind = kind
        self.rtype = KINDS[kind][0]
        self.store = data.store.setdefault(self.rtype, {})

    def apply(self, action: str, row: dict[str, Any]) -> tuple[str, str] | None:
        if action == "create":
            return self._create(row)
        rid = str(row["id"])
        rec = self.store.get(rid)
        if rec is None:
            return "/id", f"A {self.rtype} with id {rid} does not exist."
        if action == "delete":
            self._delete(rec)
            return None
        problem = self._links(row)
        if problem is None:
            self._write(rec, row)
        return problem

    def _create(self, row: dict[str, Any]) -> tuple[str, str] | None:
        attrs = row["attributes"]
        catalog = attrs.get("catalog_type") or "$default"
        if catalog != "$default":
            return "/attributes/catalog_type", f"Unknown catalog_type '{catalog}'; only $default exists."
        rid = ID_PREFIX + str(attrs["external_id"])
        if rid in self.store:
            return "/attributes/external_id", f"A {self.rtype} with external_id {attrs['external_id']} already exists."
        problem = self._links(row)
        if problem is not None:
            return problem
        stamp = fmt(now_micros())
        empty: dict[str, dict[str, Any]] = {
            "catalog-item": {"variants": [], "categories": []},
            "catalog-variant": {"item": None},
            "catalog-category": {"items": []},
        }
        rels = empty[self.rtype]
        names = self._attribute_names()
        rec = Rec(self.rtype, rid, {name: None for name in names}, rels)
        given = {"external_id": attrs["external_id"], "created": stamp, "updated": stamp}
        rec.attrs.update({k: v for k, v in given.items() if k in names})
        self.store[rid] = rec
        self._write(rec, row)
        return None

    def _attribute_names(self) -> list[str]:
        op = get_spec().operation("GET", f"/api/{self.rtype.replace('category', 'categorie')}s")
        assert op.data is not None
        return list(op.data.attributes)

    def _links(self, row: dict[str, Any]) -> tuple[str, str] | None:
        """Every item, category or variant the row points at must exist."""
        for name, ref in (row.get("relationships") or {}).items():
            target = {"categories": "catalog-category", "items": "catalog-item", "item": "catalog-item"}.get(name)
            data = (ref or {}).get("data")
            refs = data if isinstance(data, list) else [data] if data else []
            for i, item in enumerate(refs):
                if target and item.get("id") not in self.data.store.get(target, {}):
                    at = f"/relationships/{name}/data" + (f"/{i}" if isinstance(data, list) else "")
                    return at, f"A {target} with id {item.get('id')} does not exist."
        return None

    def _write(self, rec: Rec, row: dict[str, Any]) -> None:
        attrs = row.get("attributes") or {}
        names = set(self._attribute_names()) - {"created", "updated", "external_id"}
        values = {**rec.attrs, **{k: v for k, v in attrs.items() if k in names}}
        values["updated"] = fmt(now_micros())
        rec.attrs = values
        rels = row.get("relationships") or {}
        if self.rtype == "catalog-item" and "categories" in rels:
            self._set_categories(rec, [c["id"] for c in rels["categories"].get("data") or []])
        if self.rtype == "catalog-category" and "items" in rels:
            for iid in [i["id"] for i in rels["items"].get("data") or []]:
                item = self.data.store["catalog-item"][iid]
                self._set_categories(item, [*item.rels["categories"], rec.id])
        if self.rtype == "catalog-variant" and "item" in rels:
            self._set_item(rec, rels["item"]["data"]["id"])
        self.data.generation += 1

    def _set_categories(self, item: Rec, category_ids: list[str]) -> None:
        categories = self.data.store.get("catalog-category", {})
        for cid in item.rels["categories"]:
            if cid in categories and item.id in categories[cid].rels["items"]:
                categories[cid].rels["items"].remove(item.id)
        item.rels["categories"] = list(dict.fromkeys(category_ids))
        for cid in item.rels["categories"]:
            categories[cid].rels["items"].append(item.id)

    def _set_item(self, variant: Rec, item_id: str) -> None:
        items = self.data.store["catalog-item"]
        old = items.get(str(variant.rels.get("item")))
        if old is not None and variant.id in old.rels["variants"]:
            old.rels["variants"].remove(variant.id)
        variant.rels["item"] = item_id
        items[item_id].rels["variants"].append(variant.id)

    def _delete(self, rec: Rec) -> None:
        """Deleting an item deletes its variants (assumed) and leaves its categories; a category leaves its items."""
        del self.store[rec.id]
        if self.rtype == "catalog-item":
            self._set_categories(rec, [])
            for vid in rec.rels["variants"]:
                self.data.store.get("catalog-variant", {}).pop(vid, None)
        elif self.rtype == "catalog-variant":
            item = self.data.store.get("catalog-item", {}).get(str(rec.rels.get("item")))
            if item is not None and rec.id in item.rels["variants"]:
                item.rels["variants"].remove(rec.id)
        else:
            for iid in rec.rels["items"]:
                item = self.data.store.get("catalog-item", {}).get(iid)
                if item is not None:
                    item.rels["categories"] = [c for c in item.rels["categories"] if c != rec.id]
        self.data.generation += 1


__all__ = ["MAX_IN_PROGRESS", "MAX_OBJECTS", "BulkJobs"]
