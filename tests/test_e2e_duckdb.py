"""`meltano run tap-klaviyo target-duckdb` loses no rows, and a second run with state adds only new ones.

This is the proof behind the embedded database of the README's first command: target-duckdb 0.8.0 with
duckdb 1.2.2 and `add_metadata_columns` (meltano.yml says why those pins).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from klaviyo_emulator import Emulator, EmulatorConfig
from tests.meltano_e2e import (
    Meltano,
    assert_second_run_adds_only_new,
    assert_tables_hold,
    duckdb_counts,
    duckdb_query,
    e2e_settings,
    emitted_keys,
    meltano_for_tests,
    mutate_account,
    run_tap_as_meltano_would,
    tap_env,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def meltano(tmp_path_factory: pytest.TempPathFactory) -> Meltano:
    return meltano_for_tests(tmp_path_factory.mktemp("meltano-duckdb"), ["tap-klaviyo", "target-duckdb"])


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0)) as emulator:
        yield emulator


def test_duckdb_holds_every_emitted_record_and_state_adds_only_new(
    meltano: Meltano, emu: Emulator, tmp_path: Path
) -> None:
    database = tmp_path / "e2e.duckdb"
    env = {**tap_env(emu, **e2e_settings(emu)), "TARGET_DUCKDB_FILEPATH": str(database)}

    first = run_tap_as_meltano_would(meltano, env)
    first_keys = emitted_keys(first)
    meltano("run", "tap-klaviyo", "target-duckdb", env=env)
    tables = first.key_properties
    before = duckdb_counts(database, tables)
    assert_tables_hold(before, first_keys, "after the first run")
    # The streams whose every column is a key (target-duckdb 0.8.0 cannot update those) are there too.
    assert before["audience_included"].rows > 0

    created = mutate_account(emu)
    state = meltano.state("dev:tap-klaviyo-to-target-duckdb")
    assert state["singer_state"]["bookmarks"], state
    second = run_tap_as_meltano_would(meltano, env, state=state["singer_state"])
    meltano("run", "tap-klaviyo", "target-duckdb", env=env)
    after = duckdb_counts(database, tables)
    assert_second_run_adds_only_new(before, after, first_keys, emitted_keys(second), created)

    new_events = ", ".join(f"'{key[0]}'" for key in created["event"])
    assert duckdb_query(database, f"select count(*) from klaviyo.event where id in ({new_events})") == [[5]]
