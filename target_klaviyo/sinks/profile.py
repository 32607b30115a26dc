"""profile: upserts through bulk import jobs (10,000 rows, 5 MB, 100 KB a row); rows that clear fields one by one."""

from __future__ import annotations

from typing import Any

from typing_extensions import override

from klaviyo_core.errors import KlaviyoAPIError
from target_klaviyo.sinks.base import KlaviyoSink
from target_klaviyo.writing.pipeline import Unit
from target_klaviyo.writing.rows import MAX_BODY_BYTES, RowError, chunks, identity, size_of

SCALARS: tuple[str, ...] = ("email", "phone_number", "external_id", "first_name", "last_name", "organization")
SCALARS += ("title", "locale", "image")
LOCATION = ("address1", "address2", "city", "country", "latitude", "longitude", "region", "zip", "timezone", "ip")
MAX_PROFILE_BYTES = 100 * 1024
MAX_ROWS_PER_JOB = 10_000


class ProfileSink(KlaviyoSink):
    name = "profile"
    MAX_SIZE_DEFAULT = MAX_ROWS_PER_JOB  # one job a batch; the jobs of successive batches are in flight together

    def attributes(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row as Klaviyo's profile attributes: absent keys stay absent; nulls only when they clear."""
        keep_nulls = bool(self.config.get("clear_nulls"))
        attrs: dict[str, Any] = {k: row[k] for k in SCALARS if k in row and (row[k] is not None or keep_nulls)}
        for name, keys in (("location", LOCATION), ("properties", None)):
            value = row.get(name)
            if isinstance(value, dict):
                given = {
                    k: v for k, v in value.items() if (keys is None or k in keys) and (v is not None or keep_nulls)
                }
                if given:
                    attrs[name] = given
            elif value is not None:
                raise RowError(f"{name} must be an object")
        if not any(attrs.get(k) for k in ("email", "phone_number", "external_id")):
            identity(row)  # raises: no identifier
        if size_of(attrs) > MAX_PROFILE_BYTES:
            raise RowError("the profile is over Klaviyo's 100 KB per profile")
        return attrs

    @override
    def write(self, rows: list[dict[str, Any]], unit: Unit) -> None:
        accepted = self.checked(rows, self.attributes)
        self.sent(unit, len(rows) - len(accepted))
        if self.dry_run:
            self.count("written", len(accepted))
            self.sent(unit, len(accepted))
            return
        clearing = [(r, a) for r, a in accepted if any(v is None for v in _leaves(a))]
        bulk = [(r, a) for r, a in accepted if not any(v is None for v in _leaves(a))]
        poller = self.klaviyo.poller
        for part in chunks(bulk, MAX_ROWS_PER_JOB, MAX_BODY_BYTES, size=lambda pair: size_of(pair[1])):
            body, held = poller.prepare_profile_import(unit, part)
            self.spawn(unit, poller.submit_profile_import, unit, body, held, self.what, self.confirmed)
        for row, attrs in clearing:
            self.spawn(unit, self.upsert_one, unit, row, attrs)

    def upsert_one(self, unit: Unit, row: dict[str, Any], attrs: dict[str, Any]) -> None:
        """The single upsert clears a field on null (bulk import cannot)."""
        body = {"data": {"type": "profile", "attributes": attrs}}
        try:
            response = self.klaviyo.client.request("POST", "/api/profile-import", body=body, what=self.what)
        except KlaviyoAPIError as exc:
            if exc.status in (400, 409, 413, 422):
                self.reject(row, str(exc))
                self.sent(unit, 1)
                return
            raise
        self.sent(unit, 1)
        self.count("created" if response.status_code == 201 else "updated")


def _leaves(attrs: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for value in attrs.values():
        out.extend(value.values() if isinstance(value, dict) else [value])
    return out
