"""The target's settings: the tap's auth and connection settings, plus what writing needs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from singer_sdk import typing as th

from klaviyo_core.connection import CONNECTION_HEAD, CONNECTION_SETTINGS, CONNECTION_TAIL, connection_errors

#: The target's own settings (the connection settings are the tap's: api/connection.py).
OWN = th.PropertiesList(
    th.Property(
        "clear_nulls",
        th.BooleanType,
        default=False,
        title="Clear fields on null",
        description="A null in a profile row clears that field in Klaviyo (such rows go through the single-profile "
        "upsert, 1 request each, since bulk import cannot clear). Off: a null leaves the field as it is.",
    ),
    th.Property(
        "allow_global_unsubscribe",
        th.BooleanType,
        default=False,
        title="Allow global unsubscribe",
        description="Klaviyo unsubscribes a profile from ALL marketing of the channel when the row names no list, "
        "or a list the profile is not in. Off: such rows are rejected instead.",
    ),
    th.Property(
        "allow_deletes",
        th.BooleanType,
        default=False,
        title="Allow deletes",
        description="A row with a non-null _sdc_deleted_at deletes what it names (a list membership, template, "
        "segment, list, draft campaign, catalog object or suppression; an image is hidden), and an ACTIVATE_VERSION "
        "deletes the stream's objects its version did not write. Off: such rows are rejected with that reason, "
        "and nothing is deleted.",
    ),
    th.Property(
        "historical_import",
        th.BooleanType,
        default=False,
        title="Historical consent import",
        description="Subscriptions are past consent being recorded: no double opt-in, no welcome flow. Every row "
        "then needs a consented_at in the past.",
    ),
    th.Property(
        "event_backfill",
        th.BooleanType,
        default=True,
        title="Events as backfill",
        description="Written events trigger no flows (Klaviyo's backfill flag). Turn off to let live events fire "
        "flows.",
    ),
    th.Property(
        "rejects_file",
        th.StringType,
        title="Rejects file",
        description="JSON lines file receiving every row Klaviyo or the target refused: stream, row, reason. "
        "Without it rejects are only counted and logged.",
    ),
    th.Property(
        "max_rejects",
        th.IntegerType,
        default=0,
        title="Rejects allowed",
        description="The run exits non-zero when more rows than this were rejected.",
    ),
    th.Property(
        "dry_run",
        th.BooleanType,
        default=False,
        title="Dry run",
        description="Validate every row and report what would be created, updated, deleted and rejected; write "
        "nothing (lists, profiles and objects are looked up, never created).",
    ),
    th.Property(
        "job_poll_interval",
        th.NumberType,
        default=2,
        title="Job poll interval (s)",
        description="Seconds between polls of a bulk job (profile import, catalog, suppression) at first; "
        "less often as it ages.",
    ),
).to_dict()

TARGET_CONFIG_SCHEMA: dict[str, Any] = th.PropertiesList(*CONNECTION_HEAD, *CONNECTION_TAIL).to_dict()
TARGET_CONFIG_SCHEMA["properties"].update(OWN["properties"])


def target_settings_errors(config: Mapping[str, Any]) -> list[str]:
    """The tap's checks of the shared settings, and the target's own, one line each."""
    errors = connection_errors({name: config[name] for name in CONNECTION_SETTINGS if name in config})
    rejects = config.get("rejects_file")
    if rejects and not Path(str(rejects)).expanduser().parent.is_dir():
        errors.append(f"rejects_file {rejects!r}: its folder does not exist; create it or choose another path")
    allowed = config.get("max_rejects", 0)
    if isinstance(allowed, bool) or not isinstance(allowed, int) or allowed < 0:
        errors.append(f"max_rejects {allowed!r} must be a whole number, 0 or more")
    poll = config.get("job_poll_interval", 2)
    if isinstance(poll, bool) or not isinstance(poll, int | float) or poll <= 0:
        errors.append(f"job_poll_interval {poll!r} must be a positive number of seconds")
    return errors
