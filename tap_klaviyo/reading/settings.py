"""Settings: their JSON schema and the checks that must pass before the first request."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from singer_sdk import typing as th

from klaviyo_core.connection import (
    CONNECTION_HEAD,
    CONNECTION_TAIL,
    DEFAULT_API_URL,
    OAUTH_SETTINGS,
    SECRET_SETTINGS,
    connection_errors,
)
from klaviyo_core.timestamps import parse_utc

SERIES_REPORTS = ("flow_series_report", "segment_series_report", "form_series_report")
VALUES_REPORTS = ("campaign_values_report", "flow_values_report")
#: Days between full reads, per setting (`full_reads`): memberships read in full weekly whatever the loader;
#: the small incremental streams daily and profiles monthly, with emit_activate_version_messages.
FULL_READ_DEFAULTS = {"membership_full_refresh_days": 7, "full_read_days": 1, "profile_full_read_days": 30}

CONFIG_SCHEMA = th.PropertiesList(
    *CONNECTION_HEAD,
    th.Property(
        "start_date",
        th.DateTimeType,
        title="Start date",
        description="Earliest record to sync for incremental streams; without it, all history.",
    ),
    th.Property(
        "end_date",
        th.DateTimeType,
        title="End date",
        description="Exclusive upper bound for incremental streams (events and the rest).",
    ),
    th.Property(
        "include_predictive_analytics",
        th.BooleanType,
        default=False,
        title="Profile predictive analytics",
        description="Also fetch profiles' predictive_analytics (Klaviyo serves these at 10/s, 150/min: slower).",
    ),
    th.Property(
        "event_metric_ids",
        th.ArrayType(th.StringType(min_length=1)),
        title="Event metrics",
        description="Only events of these metric ids (Klaviyo's metric_id filter; each keeps its own bookmark).",
    ),
    th.Property(
        "event_profile_ids",
        th.ArrayType(th.StringType(min_length=1)),
        title="Event profiles",
        description="Only events of these profile ids (a person's timeline), via Klaviyo's profile_id filter.",
    ),
    th.Property(
        "event_profile_fields",
        th.ArrayType(th.StringType(min_length=1)),
        title="Profile fields on events",
        description="Profile attributes to inline on each event under `profile` (e.g. email, first_name).",
    ),
    th.Property(
        "event_lookback_days",
        th.NumberType(minimum=0),
        default=1,
        title="Event lookback (days)",
        description="Days re-read behind the event bookmark on each run: Klaviyo's events API is eventually "
        "consistent, so late arrivals are caught (records may repeat; keys dedupe them).",
    ),
    th.Property(
        "report_conversion_metric_id",
        th.StringType,
        title="Report conversion metric",
        description="Metric id for conversion statistics in campaign and flow reports; by default the "
        'account\'s "Placed Order" metric, found by name.',
    ),
    th.Property(
        "report_window_days",
        th.NumberType(minimum=1, maximum=365),
        default=365,
        title="Values report window (days)",
        description="campaign_values_report and flow_values_report hold each grouping's totals over the last "
        "this many days (at most 365, Klaviyo's limit; a later start_date shortens it): one request a run.",
    ),
    th.Property(
        "report_values_per_day",
        th.ArrayType(th.StringType(allowed_values=list(VALUES_REPORTS))),
        title="Per-day values reports",
        description="Values reports read one day per request instead (rows keyed by date and grouping, "
        "incremental on date): any of campaign_values_report, flow_values_report. Each day costs one of "
        "Klaviyo's 225 report requests a day; raise report_requests_per_run to catch up faster.",
    ),
    th.Property(
        "report_requests_per_run",
        th.IntegerType(minimum=1),
        default=2,
        title="Report requests per run",
        description="Requests for days not read yet that each series report (60 days a request) or per-day "
        "values report (a day a request) makes in one run; the rest continues on the next run. Re-reading "
        "the lookback is not counted.",
    ),
    th.Property(
        "report_history_days",
        th.NumberType(minimum=0),
        default=60,
        title="Report history (days)",
        description="Days of series (and per-day values) reports read when start_date is unset.",
    ),
    th.Property(
        "report_lookback_days",
        th.NumberType(minimum=0),
        default=3,
        title="Report lookback (days)",
        description="Days of series (and per-day values) reports re-read behind the bookmark, for late attribution.",
    ),
    th.Property(
        "series_reports",
        th.ArrayType(th.StringType(allowed_values=list(SERIES_REPORTS))),
        title="Series reports (deprecated)",
        description="No longer needed: the series report streams sync whenever the catalog selects them. "
        "Still accepted (names checked) and otherwise ignored.",
    ),
    th.Property(
        "metric_aggregate_queries",
        th.ArrayType(
            th.ObjectType(
                th.Property("name", th.StringType, required=True),
                th.Property("metric_id", th.StringType, required=True),
                th.Property("measurements", th.ArrayType(th.StringType), required=True),
                th.Property("by", th.ArrayType(th.StringType)),
                th.Property("filter", th.ArrayType(th.StringType)),
                th.Property("interval", th.StringType),
                th.Property("timezone", th.StringType),
                additional_properties=True,
            )
        ),
        title="Metric aggregate queries",
        description="Named Query Metric Aggregates requests (Klaviyo's JSON body attributes) for the "
        "metric_aggregate stream; the time range comes from the state when the filter gives none.",
    ),
    th.Property(
        "custom_streams",
        th.ArrayType(
            th.ObjectType(
                th.Property("name", th.StringType, required=True),
                th.Property("path", th.StringType, required=True),
                th.Property("params", th.ObjectType(additional_properties=True)),
                th.Property("replication_key", th.StringType),
            )
        ),
        title="Custom streams",
        description="Extra streams from any GET collection path of the API (checked against the spec at "
        "start-up), with optional query params and replication key.",
    ),
    th.Property(
        "membership_full_refresh_days",
        th.NumberType(minimum=0),
        default=FULL_READ_DEFAULTS["membership_full_refresh_days"],
        title="Membership full refresh (days)",
        description="Every this many days, profile_list and profile_segment re-read every membership in full "
        "so removals can be detected (0 turns it off).",
    ),
    th.Property(
        "emit_activate_version_messages",
        th.BooleanType,
        default=False,
        title="Emit ACTIVATE_VERSION messages",
        description="Records of a full read carry a table version and the read ends with ACTIVATE_VERSION, so "
        "a loader that honours it (target-postgres) deletes or marks (`_sdc_deleted_at`) the rows Klaviyo no "
        "longer has. Turns on the periodic full reads of full_read_days and profile_full_read_days.",
    ),
    th.Property(
        "full_read_days",
        th.NumberType(minimum=0),
        default=FULL_READ_DEFAULTS["full_read_days"],
        title="Full read (days)",
        description="With emit_activate_version_messages: every this many days, the small incremental streams "
        "(list, segment, flow, campaign, template, image, form, web_feed, custom streams) and their children "
        "are read in full so deletions reach the loader (0 turns it off).",
    ),
    th.Property(
        "profile_full_read_days",
        th.NumberType(minimum=0),
        default=FULL_READ_DEFAULTS["profile_full_read_days"],
        title="Profile full read (days)",
        description="With emit_activate_version_messages: every this many days, profile, global_exclusion and "
        "list_exclusion are read in full so deleted profiles and lifted suppressions reach the loader "
        "(0 turns it off; a full profile read costs one request per 100 profiles).",
    ),
    th.Property(
        "skip_streams_without_scope",
        th.BooleanType,
        default=False,
        title="Skip streams without scope",
        description="Skip, with one warning each, streams whose scope the key lacks instead of failing the run.",
    ),
    *CONNECTION_TAIL,
).to_dict()


def _parse_datetime(value: Any) -> datetime:
    parsed = parse_utc(value)
    if parsed is None:
        msg = f"{value!r} is not an ISO-8601 date or date-time"
        raise ValueError(msg)
    return parsed


def settings_errors(config: Mapping[str, Any]) -> list[str]:
    """Every problem in the settings, one readable line each (what is wrong, what to do)."""
    errors = connection_errors(config)
    dates: dict[str, datetime] = {}
    for name in ("start_date", "end_date"):
        if config.get(name):
            try:
                dates[name] = _parse_datetime(config[name])
            except ValueError:
                errors.append(f"{name} {config[name]!r} is not an ISO-8601 date or date-time")
    if "start_date" in dates and "end_date" in dates and dates["end_date"] <= dates["start_date"]:
        errors.append("end_date must be later than start_date")

    return errors


def parse_date_setting(config: Mapping[str, Any], name: str) -> datetime | None:
    value = config.get(name)
    return _parse_datetime(value) if value else None


__all__ = ["CONFIG_SCHEMA", "DEFAULT_API_URL", "OAUTH_SETTINGS", "SECRET_SETTINGS", "settings_errors"]
