"""`meltano run tap-klaviyo target-postgres` into a real PostgreSQL: every table holds exactly the records the
tap emitted, a second run with state adds only the new ones, and BATCH messages arrive complete.

PostgreSQL comes from TEST_POSTGRES_URL (`.ci/run` installs Debian's package and starts one); without it
these tests skip, unless REQUIRE_POSTGRES is set (as in CI), when they fail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from klaviyo_emulator import Emulator, EmulatorConfig
from tests.meltano_e2e import (
    Meltano,
    Postgres,
    assert_second_run_adds_only_new,
    assert_tables_hold,
    e2e_settings,
    emitted_keys,
    meltano_for_tests,
    mutate_account,
    postgres_or_skip,
    run_tap_as_meltano_would,
    tap_env,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def postgres() -> Postgres:
    return postgres_or_skip()


@pytest.fixture(scope="module")
def meltano(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Meltano:
    return meltano_for_tests(tmp_path_factory.mktemp("meltano-postgres"), ["tap-klaviyo", "target-postgres"])


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0)) as emulator:
        yield emulator


def fresh_schema(postgres: Postgres, name: str) -> str:
    postgres.query(f'drop schema if exists "{name}" cascade')
    return name


def test_postgres_holds_every_emitted_record_and_state_adds_only_new(
    meltano: Meltano, postgres: Postgres, emu: Emulator
) -> None:
    schema = fresh_schema(postgres, "klaviyo_e2e")
    env = {
        **tap_env(emu, **e2e_settings(emu)),
        **postgres.target_env,
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
    }

    first = run_tap_as_meltano_would(meltano, env)
    first_keys = emitted_keys(first)
    meltano("run", "tap-klaviyo", "target-postgres", env=env)
    tables = first.key_properties
    before = postgres.counts(tables, schema)
    assert_tables_hold(before, first_keys, "after the first run")

    created = mutate_account(emu)
    state = meltano.state("dev:tap-klaviyo-to-target-postgres")
    assert state["singer_state"]["bookmarks"], state
    second = run_tap_as_meltano_would(meltano, env, state=state["singer_state"])
    meltano("run", "tap-klaviyo", "target-postgres", env=env)
    after = postgres.counts(tables, schema)
    assert_second_run_adds_only_new(before, after, first_keys, emitted_keys(second), created)

    new_events = ", ".join(f"'{key[0]}'" for key in created["event"])
    assert postgres.query(f"select count(*) from {schema}.event where id in ({new_events})") == [["5"]]
    # Without emit_activate_version_messages nothing tells the target to mark rows deleted.
    assert postgres.query(f"select count(*) from {schema}.metric where _sdc_deleted_at is not null") == [["0"]]


def test_batch_messages_arrive_complete(meltano: Meltano, postgres: Postgres, emu: Emulator, tmp_path: Path) -> None:
    """The tap writes gzipped JSONL batch files and BATCH messages; target-postgres (an SDK target) loads them,
    and every table then holds the same rows as a load of the same account through RECORD messages."""
    schema = fresh_schema(postgres, "klaviyo_batch")
    by_record = fresh_schema(postgres, "klaviyo_batch_records")
    batches = tmp_path / "batches"
    batches.mkdir()
    batch_config = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": batches.as_uri(), "prefix": "klaviyo-"},
    }
    env = {
        **tap_env(emu, **e2e_settings(emu)),
        **postgres.target_env,
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
    }
    expected = run_tap_as_meltano_would(meltano, env)  # the same records, as RECORD messages

    batch_env = {**env, **tap_env(emu, batch_config=batch_config)}
    meltano("run", "--full-refresh", "tap-klaviyo", "target-postgres", env=batch_env)  # not the state of other tests
    assert list(batches.glob("klaviyo-*.json.gz")), "the tap wrote no batch files"
    assert_tables_hold(postgres.counts(expected.key_properties, schema), emitted_keys(expected), "BATCH run")

    record_env = {**env, "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": by_record}
    meltano("run", "--full-refresh", "tap-klaviyo", "target-postgres", env=record_env)
    # A values report totals a trailing year that ends when its run starts: two runs seconds apart differ there
    # (their keys are compared above); every other table must hold the very same rows.
    tables = sorted(t for t in emitted_keys(expected) if not t.endswith("_values_report"))
    batched, recorded = postgres.table_digests(tables, schema), postgres.table_digests(tables, by_record)
    differing = {t: (batched[t], recorded[t]) for t in tables if batched[t] != recorded[t]}
    assert not differing, f"tables whose rows differ, BATCH against RECORD (rows, md5): {differing}"
    assert all(rows for rows, _ in batched.values()), batched  # every table the tap emitted records for


#: Rows of a deleted campaign, list and membership, per table (the campaign's children go with it).
def _gone(campaign: str, messages: str, deleted_list: str, member_list: str, removed: str) -> dict[str, str]:
    of_campaign = f"campaign_id = '{campaign}'"
    of_messages = f"campaign_message_id in ({messages})"
    return {
        "campaign": f"id = '{campaign}'",
        "campaign_messages": of_campaign,
        "campaign_message_template": of_messages,
        "campaign_message_send_time": of_messages,
        "campaign_recipient_estimation": of_campaign,
        "audience_included": of_campaign,
        "audience_excluded": of_campaign,
        "campaign_utm_param": of_campaign,
        "list": f"id = '{deleted_list}'",
        "profile_list": f"list_id = '{deleted_list}' or (list_id = '{member_list}' and profile_id = '{removed}')",
    }


@pytest.mark.parametrize("hard_delete", [False, True], ids=["soft-delete", "hard-delete"])
def test_deletions_reach_postgres(meltano: Meltano, postgres: Postgres, emu: Emulator, hard_delete: bool) -> None:
    """A removed membership, a deleted list and a deleted campaign (with its messages) are marked
    `_sdc_deleted_at`, or with `hard_delete` removed, by the next full read; every other row stays."""
    schema = fresh_schema(postgres, f"klaviyo_deletions_{'hard' if hard_delete else 'soft'}")
    env = {
        **tap_env(emu, **e2e_settings(emu), emit_activate_version_messages=True),
        **postgres.target_env,
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
        "TARGET_POSTGRES_HARD_DELETE": "true" if hard_delete else "false",
    }
    run = ("run", "--state-id-suffix", schema, "tap-klaviyo", "target-postgres")
    meltano(*run, env=env)

    account = emu.account
    lists = sorted(account.expected_ids("list"))
    deleted_list, member_list = lists[0], next(g for g in lists[1:] if account.list_members(g))
    removed = sorted(account.list_members(member_list))[0]
    campaign = sorted(account.expected_ids("campaign"))[0]
    messages = f"select id from {schema}.campaign_messages where campaign_id = '{campaign}'"
    gone = _gone(campaign, messages, deleted_list, member_list, removed)
    tables = [
        row[0]
        for row in postgres.query(f"select table_name from information_schema.tables where table_schema = '{schema}'")
    ]

    def splits(*, marks: bool = False) -> dict[str, tuple[int, ...]]:
        """Per table, in one query: (rows of what was deleted, other rows), and with `marks` (rows marked
        deleted, rows of what was deleted left unmarked)."""
        selects = []
        for table in tables:
            doomed = f"coalesce(({gone.get(table, 'false')}), false)"
            counts = [f"count(*) filter (where {doomed})", f"count(*) filter (where not {doomed})"]
            if marks:
                counts += [
                    "count(*) filter (where _sdc_deleted_at is not null)",
                    f"count(*) filter (where {doomed} and _sdc_deleted_at is null)",
                ]
            selects.append(f"select '{table}', {', '.join(counts)} from {schema}.{table}")
        return {row[0]: tuple(int(n) for n in row[1:]) for row in postgres.query(" union all ".join(selects))}

    before = splits()
    for table in ("campaign", "campaign_messages", "list", "profile_list"):
        assert before[table][0], f"{table}: nothing to delete was loaded"

    account.remove_list_member(member_list, removed)
    account.delete("list", deleted_list)
    account.delete("campaign", campaign)
    # Eight days later: full reads due for the small streams (full_read_days 1) and memberships (7), not
    # for profiles (30).
    state_id = f"dev:tap-klaviyo-to-target-postgres:{schema}"
    state = meltano.state(state_id)
    aged = (datetime.now(timezone.utc) - timedelta(days=8)).isoformat()
    for stream_state in state["singer_state"]["bookmarks"].values():
        if "full_refresh_at" in stream_state:
            stream_state["full_refresh_at"] = aged
    meltano("state", "set", "--force", state_id, json.dumps(state), env=env)
    meltano(*run, env=env)

    after = splits(marks=not hard_delete)
    for table in tables:
        doomed, kept = before[table]
        if hard_delete:
            assert after[table] == (0, kept), f"{table}: {after[table]}, expected (0, {kept})"
            continue
        assert after[table][:2] == (doomed, kept), table
        marked, unmarked = after[table][2:]
        assert marked == doomed, f"{table}: {marked} rows marked deleted, {doomed} expected"
        if doomed:
            assert unmarked == 0, table
