"""global_exclusion: emails suppressed from all email marketing, matched by email, written through profile
suppression bulk jobs of 100 emails; a deleted row (with allow_deletes) removes the suppression.

Klaviyo removes only suppressions a user made (USER_SUPPRESSED): a bounce or an invalid email stays, so such
a deleted row is rejected with that reason rather than counted as removed."""

from __future__ import annotations

from typing import Any

from typing_extensions import override

from target_klaviyo.sinks.bulk import BulkObjectSink, Planned
from target_klaviyo.sinks.objects import Wanted
from target_klaviyo.writing.keyed import Action, Known
from target_klaviyo.writing.rows import RowError, identity

SUPPRESS = "/api/profile-suppression-bulk-create-jobs"
UNSUPPRESS = "/api/profile-suppression-bulk-delete-jobs"
USER_SUPPRESSED = "USER_SUPPRESSED"


def suppression_reasons(known: Known) -> list[str]:
    subscriptions = known.attributes.get("subscriptions") or {}
    marketing = (subscriptions.get("email") or {}).get("marketing") or {}
    return [str(entry.get("reason")) for entry in marketing.get("suppression") or []]


class GlobalExclusionSink(BulkObjectSink):
    name = "global_exclusion"
    job_kind = "suppression job"
    key_attribute = "email"
    collection = "/api/profiles"
    #: Klaviyo's own suppression filter: suppressed profiles only, never a scan of every profile.
    fields = {
        "filter": "greater-than(subscriptions.email.marketing.suppression.timestamp,2010-01-01T00:00:00Z)",
        "additional-fields[profile]": "subscriptions",
        "fields[profile]": "email,subscriptions",
        "page[size]": "100",
    }

    @override
    def parse(self, row: dict[str, Any]) -> Wanted:
        if not row.get("email"):
            raise RowError("no email: a suppression is matched and written by its email")
        return Wanted(identity(row, ("email",))["email"])

    @override
    def decide(self, wanted: Wanted) -> tuple[Action, Known | None, dict[str, Any]]:
        action, found, attributes = super().decide(wanted)
        if action is Action.DELETE and found is not None:
            reasons = suppression_reasons(found)
            if reasons and USER_SUPPRESSED not in reasons:
                raise RowError(
                    f"suppressed by Klaviyo ({', '.join(reasons)}): only a suppression a user made can be removed"
                )
        return action, found, attributes

    @override
    def mirrored(self, known: Known) -> bool:
        return USER_SUPPRESSED in suppression_reasons(known)

    @override
    def object_id(self, wanted: Wanted) -> str:
        return ""  # a suppression has no id of its own

    @override
    def job_path(self, action: Action) -> str:
        return UNSUPPRESS if action is Action.DELETE else SUPPRESS

    @override
    def job_data(self, action: Action, part: list[Planned]) -> dict[str, Any]:
        verb = "delete" if action is Action.DELETE else "create"
        emails = [{"type": "profile", "attributes": {"email": planned.wanted.key}} for planned in part]
        return {"type": f"profile-suppression-bulk-{verb}-job", "attributes": {"profiles": {"data": emails}}}
