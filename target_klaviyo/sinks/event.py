"""event: bulk create jobs (1,000 events, 5 MB a call), each event with a unique_id that is the same every run.

Klaviyo answers 202 without a body and drops what it cannot use without saying, so every row is checked
here first. The unique_id makes a re-run, or a batch retried after an unclear failure, change nothing.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from typing_extensions import override

from klaviyo_core.documents import encode_document
from klaviyo_core.timestamps import parse_utc
from target_klaviyo.sinks.base import KlaviyoSink
from target_klaviyo.writing.pipeline import Unit
from target_klaviyo.writing.rows import MAX_BODY_BYTES, RowError, chunks, identity, iso, size_of

EVENTS_PER_CALL = 1_000
MAX_PROPERTIES = 300
#: Klaviyo's event docs are stricter than the spec (300 properties, not 400; from 2000, not 1990): the stricter.
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)


def unique_id(row: dict[str, Any], ids: dict[str, str], metric: str, when: str, props: Any) -> str:
    """The row's own id (unique_id, uuid or id), else a hash of who, what, when and the properties."""
    for name in ("unique_id", "uuid", "id"):
        if row.get(name):
            return str(row[name])
    basis = json.dumps([sorted(ids.items()), metric, when, props], sort_keys=True, default=_as_read_before)
    return hashlib.sha256(basis.encode()).hexdigest()


def _as_read_before(value: Any) -> Any:
    """Decimals hash as the floats earlier versions read, so a re-run after an upgrade keeps every unique_id."""
    return float(value) if isinstance(value, Decimal) else str(value)


class EventSink(KlaviyoSink):
    name = "event"
    MAX_SIZE_DEFAULT = 5 * EVENTS_PER_CALL  # five calls a batch, on the lane's workers

    def entry(self, row: dict[str, Any]) -> dict[str, Any]:
        """One event as a bulk entry (its profile and the event), or RowError."""
        given = row.get("profile")
        profile: dict[str, Any] = given if isinstance(given, dict) else {}
        ids = identity({**{k: row.get(k) for k in ("email", "phone_number", "external_id")}, **profile})
        metric = str(row.get("metric_name") or "").strip()
        if not metric:
            raise RowError("no metric_name: events are recorded under a metric's name")
        when = iso(row.get("datetime"))
        if when is None:
            raise RowError("no datetime: an event needs the time it happened")
        moment = parse_utc(when)
        if moment is None or moment < EARLIEST or moment > self.klaviyo.client.clock.now() + timedelta(days=365):
            raise RowError(f"datetime {when} is outside what Klaviyo accepts (from 2000, at most a year ahead)")
        props = row.get("event_properties") or {}
        if not isinstance(props, dict):
            raise RowError("event_properties must be an object")
        if len(props) > MAX_PROPERTIES:
            raise RowError(f"{len(props)} event_properties: Klaviyo takes at most {MAX_PROPERTIES}")
        event: dict[str, Any] = {
            "properties": props,
            "time": when,
            "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
            "unique_id": unique_id(row, ids, metric, when, props),
            "backfill": bool(self.config.get("event_backfill", True)),
        }
        if row.get("value") is not None:
            if not isinstance(row["value"], int | float | Decimal) or isinstance(row["value"], bool):
                raise RowError("value must be a number")
            event["value"] = row["value"]
        if row.get("value_currency"):
            event["value_currency"] = str(row["value_currency"])
        entry = {
            "type": "event-bulk-create",
            "attributes": {
                "profile": {"data": {"type": "profile", "attributes": ids}},
                "events": {"data": [{"type": "event", "attributes": event}]},
            },
        }
        if size_of(entry) > MAX_BODY_BYTES // 2:
            raise RowError("the event is larger than Klaviyo takes")
        return entry

    @override
    def write(self, rows: list[dict[str, Any]], unit: Unit) -> None:
        accepted = self.checked(rows, self.entry)
        self.sent(unit, len(rows) - len(accepted))
        if self.dry_run:
            self.count("written", len(accepted))
            self.sent(unit, len(accepted))
            return
        pipeline = self.klaviyo.pipeline
        for part in chunks(accepted, EVENTS_PER_CALL, MAX_BODY_BYTES, size=lambda pair: size_of(pair[1])):
            body = encode_document(
                {
                    "data": {
                        "type": "event-bulk-create-job",
                        "attributes": {"events-bulk-create": {"data": [entry for _, entry in part]}},
                    }
                }
            )
            # The call waits as its body (a third of the rows' size in memory), so the reader reads past a
            # backlog of events to the streams after them while the endpoint's limit is spent.
            pipeline.hold_bytes(len(body))
            self.sent(unit, len(part))
            self.spawn(unit, self.send, body, len(part))  # the pacer keeps the calls within the endpoint's limits

    def send(self, body: bytes, rows: int) -> None:
        """One call; with every event's unique_id, a retry after an unclear failure duplicates nothing."""
        self.klaviyo.client.request("POST", "/api/event-bulk-create-jobs", body=body, what=self.what)
        self.klaviyo.pipeline.hold_bytes(-len(body))
        self.count("written", rows)
