"""subscription: consent through Klaviyo's subscription bulk jobs (1,000 subscribes, 100 unsubscribes a call).

Klaviyo unsubscribes a profile from ALL marketing of the channel when the unsubscribe names no list, or a
list the profile is not in: such rows are refused unless `allow_global_unsubscribe` is on. With
`historical_import`, each row needs a consented_at in the past (no double opt-in, no welcome flow).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from typing_extensions import override

from klaviyo_core.timestamps import parse_utc
from target_klaviyo.sinks.base import KlaviyoSink
from target_klaviyo.writing.lists import ListCapReached
from target_klaviyo.writing.pipeline import Unit
from target_klaviyo.writing.rows import RowError, identity, iso, quoted

SUBSCRIBES_PER_CALL = 1_000
UNSUBSCRIBES_PER_CALL = 100
SUBSCRIBE = "/api/profile-subscription-bulk-create-jobs"
UNSUBSCRIBE = "/api/profile-subscription-bulk-delete-jobs"
CHANNEL_ID = {"email": "email", "sms": "phone_number"}
GLOBAL = (
    "unsubscribing {why} unsubscribes the profile from all {channel} marketing: refused "
    "(set allow_global_unsubscribe to allow it)"
)


Parsed = tuple[str, str, dict[str, str], str | None]
Member = tuple[dict[str, Any], dict[str, str], str | None]


class SubscriptionSink(KlaviyoSink):
    name = "subscription"

    def parsed(self, row: dict[str, Any]) -> Parsed:
        channel = str(row.get("channel") or "").lower()
        if channel not in CHANNEL_ID:
            raise RowError(f"channel {row.get('channel')!r} must be email or sms")
        consent = str(row.get("consent") or "").lower()
        if consent not in ("subscribed", "unsubscribed"):
            raise RowError(f"consent {row.get('consent')!r} must be subscribed or unsubscribed")
        ids = identity(row, (CHANNEL_ID[channel],))
        consented_at = iso(row.get("consented_at"))
        if self.config.get("historical_import") and consent == "subscribed":
            if consented_at is None:
                raise RowError("historical_import needs consented_at on every subscribed row")
            if (parse_utc(consented_at) or self.klaviyo.client.clock.now()) > self.klaviyo.client.clock.now():
                raise RowError(f"consented_at {consented_at} is in the future; historical_import needs a past one")
        return channel, consent, ids, consented_at

    @override
    def write(self, rows: list[dict[str, Any]], unit: Unit) -> None:
        accepted = self.checked(rows, self.parsed)
        self.sent(unit, len(rows) - len(accepted))
        if accepted:
            self.spawn(unit, self.apply, unit, accepted)

    def apply(self, unit: Unit, accepted: list[tuple[dict[str, Any], Parsed]]) -> None:
        """On the lane: each row's list (created when named and absent), then one call per group and size."""
        groups: dict[tuple[str, str, str | None], list[Member]] = defaultdict(list)
        for row, (channel, consent, ids, at) in accepted:
            try:
                list_id = self.list_for(row, consent)
            except (RowError, ListCapReached) as exc:
                self.reject(row, str(exc))
                self.sent(unit, 1)
                continue
            groups[(channel, consent, list_id)].append((row, ids, at))
        for (channel, consent, list_id), members in groups.items():
            if consent == "subscribed":
                self.subscribe(unit, channel, list_id, members)
            else:
                self.unsubscribe(unit, channel, list_id, members)

    def list_for(self, row: dict[str, Any], consent: str) -> str | None:
        lists = self.klaviyo.lists
        if row.get("list_id"):
            if not lists.exists(str(row["list_id"]), self.what):
                raise RowError(f"list_id {row['list_id']} is not a list of this account")
            return str(row["list_id"])
        name = str(row.get("list_name") or "").strip()
        if not name:
            return None
        if consent == "subscribed" and not self.dry_run:
            return lists.ensure(name, self.what)[0]
        found = lists.find(name, self.what)
        if found is None and consent == "subscribed":
            return None  # a dry run would create it
        if found is None:
            raise RowError(f"no list is named {name!r}")
        return found

    def subscribe(self, unit: Unit, channel: str, list_id: str | None, members: list[Member]) -> None:
        for start in range(0, len(members), SUBSCRIBES_PER_CALL):
            part = members[start : start + SUBSCRIBES_PER_CALL]
            profiles = []
            for _row, ids, at in part:
                marketing: dict[str, Any] = {"consent": "SUBSCRIBED"}
                if at:
                    marketing["consented_at"] = at
                attrs = {**ids, "subscriptions": {channel: {"marketing": marketing}}}
                profiles.append({"type": "profile", "attributes": attrs})
            attributes: dict[str, Any] = {"profiles": {"data": profiles}}
            if self.config.get("historical_import"):
                attributes["historical_import"] = True
            self.spawn(unit, self.send, unit, SUBSCRIBE, attributes, list_id, len(part))

    def unsubscribe(self, unit: Unit, channel: str, list_id: str | None, members: list[Member]) -> None:
        allowed = bool(self.config.get("allow_global_unsubscribe"))
        if not allowed:
            inside = self.members_of(list_id, channel, [ids for _, ids, _ in members]) if list_id else set()
            kept = []
            for row, ids, at in members:
                if list_id is None:
                    self.reject(row, GLOBAL.format(why="without a list", channel=channel))
                elif ids[CHANNEL_ID[channel]] not in inside:
                    self.reject(row, GLOBAL.format(why="from a list the profile is not in", channel=channel))
                else:
                    kept.append((row, ids, at))
                    continue
                self.sent(unit, 1)
            members = kept
        for start in range(0, len(members), UNSUBSCRIBES_PER_CALL):
            part = members[start : start + UNSUBSCRIBES_PER_CALL]
            profiles = [
                {
                    "type": "profile",
                    "attributes": {**ids, "subscriptions": {channel: {"marketing": {"consent": "UNSUBSCRIBED"}}}},
                }
                for _row, ids, _at in part
            ]
            attributes = {"profiles": {"data": profiles}}
            self.spawn(unit, self.send, unit, UNSUBSCRIBE, attributes, list_id, len(part))

    def send(self, unit: Unit, path: str, attributes: dict[str, Any], list_id: str | None, rows: int) -> None:
        """One call, counted once Klaviyo accepted it (a dry run only counts)."""
        kind = "profile-subscription-bulk-create-job" if "create" in path else "profile-subscription-bulk-delete-job"
        data: dict[str, Any] = {"type": kind, "attributes": attributes}
        if list_id:
            data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
        if not self.dry_run:
            self.klaviyo.client.request("POST", path, body={"data": data}, what=self.what)
        self.sent(unit, rows)
        self.count("written", rows)

    def members_of(self, list_id: str, channel: str, keys: list[dict[str, str]]) -> set[str]:
        """Which of these emails (or phone numbers) are members of the list: 100 a request."""
        field = CHANNEL_ID[channel]
        values = sorted({ids[field] for ids in keys})
        found: set[str] = set()
        for start in range(0, len(values), 100):
            params = {
                "filter": f"any({field},{quoted(values[start : start + 100])})",
                "page[size]": "100",
                "fields[profile]": field,
            }
            for resource in self.klaviyo.client.pages(f"/api/lists/{list_id}/profiles", params, self.what):
                value = (resource.get("attributes") or {}).get(field)
                if value:
                    found.add(str(value))
        return found
