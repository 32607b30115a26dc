"""The warehouse models (dbt_klaviyo/) through Meltano's dbt utilities, on what `meltano run` loads from the
emulator: `dbt build` passes on DuckDB and PostgreSQL, with the data test that checks the attribution
against the attributions the emulator knows it holds; last-touch credits follow the windows; and after the
account gains activity, an incremental build gives the same tables as a full rebuild.

PostgreSQL comes from TEST_POSTGRES_URL, as in tests/test_e2e_postgres.py.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from klaviyo_emulator import AccountData, Emulator, EmulatorConfig
from tests.meltano_e2e import Meltano, Postgres, meltano_for_tests, postgres_or_skip, tap_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

MODELS = (
    "klaviyo__events",
    "klaviyo__campaigns",
    "klaviyo__flows",
    "klaviyo__flow_messages",
    "klaviyo__persons",
    "klaviyo__list_daily",
)
EXPECTED = "klaviyo_expected.attribution"
EXPECTED_COLUMNS = (
    "event_id",
    "attributed_event_id",
    "campaign_id",
    "campaign_message_id",
    "flow_id",
    "flow_message_id",
)
QUICK = {"report_history_days": 1, "report_lookback_days": 0, "report_requests_per_run": 1}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0)) as emulator:
        yield emulator


def expected_attributions(account: AccountData) -> list[tuple[str | None, ...]]:
    """The emulator's attributions, as rows of EXPECTED_COLUMNS."""
    names = ("event", "attributed-event", "campaign", "campaign-message", "flow", "flow-message")
    return [tuple(rels.get(name) for name in names) for rels in account.expected_attributions().values()]


def dbt_vars(extra: Mapping[str, Any] | None = None) -> str:
    # One day for klaviyo__list_daily's last day, so that two builds compare whatever the clock says.
    today = datetime.now(timezone.utc).date().isoformat()
    return json.dumps(
        {"klaviyo_expected_attributions": EXPECTED, "klaviyo_list_daily_end_date": today, **(extra or {})}
    )


def dbt(meltano: Meltano, plugin: str, env: Mapping[str, str], tmp: Path, *args: str) -> str:
    """`meltano invoke <plugin> <args>`: dbt's output; every model and test must pass."""
    dbt_env = {
        **env,
        "DBT_TARGET_PATH": str(tmp / "dbt-target"),
        "DBT_LOG_PATH": str(tmp / "dbt-logs"),
        "DBT_USE_COLORS": "false",
    }
    out = meltano("invoke", plugin, *args, env=dbt_env)
    assert "ERROR=0" in out and "WARN=0" in out and "Completed successfully" in out, out[-4000:]
    return out


# -- activity the emulator's generated account lacks: touches just before orders ---------------------------


@dataclass
class Touches:
    """Orders of new profiles, each after touches at known distances, and what each must be credited to."""

    credited: dict[str, str]  # order event id -> the touch event id it is credited to
    uncredited: set[str]  # order event ids no touch is within the window of


def add_order(account: AccountData, profile: str, at: datetime) -> str:
    return account.append_events(1, when=at, metric_id=account.metric_id("Placed Order"), profile_id=profile)[0]


def add_touch(account: AccountData, profile: str, metric: str, at: datetime) -> str:
    return account.append_events(1, when=at, metric_id=account.metric_id(metric), profile_id=profile)[0]


def add_touches_before_orders(account: AccountData, now: datetime, late_order: str) -> Touches:
    """An email open 3 h before an order (credited), an SMS click 30 h before one (outside 24 h: not), an SMS
    click 5 h before one whose profile also opened an email 100 h before (the later click wins), and a touch
    loaded after its order was (`late_order`, loaded by the previous run)."""
    hours = timedelta(hours=1)
    opener, far_clicker, near_clicker = (account.add_profile(created=now - 200 * hours) for _ in range(3))
    open_id = add_touch(account, opener, "Opened Email", now - 4 * hours)
    opener_order = add_order(account, opener, now - hours)
    add_touch(account, far_clicker, "Clicked SMS", now - 31 * hours)
    far_order = add_order(account, far_clicker, now - hours)
    add_touch(account, near_clicker, "Opened Email", now - 101 * hours)
    click_id = add_touch(account, near_clicker, "Clicked SMS", now - 6 * hours)
    near_order = add_order(account, near_clicker, now - hours)
    order = account.get("event", late_order)
    assert order is not None
    late_touch = add_touch(account, str(order.rels["profile"]), "Clicked Email", now - 3 * hours)
    return Touches({opener_order: open_id, near_order: click_id, late_order: late_touch}, {far_order})


def message_of(account: AccountData, event_id: str) -> str:
    rec = account.get("event", event_id)
    assert rec is not None
    return str(rec.attrs["event_properties"]["$message"])


# -- DuckDB --------------------------------------------------------------------------------------------------


def duckdb(meltano: Meltano, database: Path, sql: str, *, write: bool = False) -> list[list[Any]]:
    """Rows of one statement, through the dbt utility's duckdb (the test venv has none)."""
    code = (
        "import duckdb, json, sys\n"
        "con = duckdb.connect(sys.argv[1], read_only=sys.argv[3] == 'r')\n"
        "rows = con.execute(sys.argv[2]).fetchall() if sys.argv[3] == 'r' else (con.execute(sys.argv[2]), [])[1]\n"
        "print(json.dumps(rows, default=str))"
    )
    python = Meltano.utility_python("dbt-duckdb")
    proc = subprocess.run(
        [str(python), "-c", code, str(database), sql, "w" if write else "r"], capture_output=True, text=True, check=True
    )
    return list(json.loads(proc.stdout))


def values_sql(rows: list[tuple[str | None, ...]]) -> str:
    def lit(value: str | None) -> str:
        return "null" if value is None else "'" + value.replace("'", "''") + "'"

    return ", ".join("(" + ", ".join(lit(v) for v in row) + ")" for row in rows)


def expected_table_sql(rows: list[tuple[str | None, ...]]) -> str:
    columns = ", ".join(f"{name} text" for name in EXPECTED_COLUMNS)
    return (
        f"create schema if not exists klaviyo_expected; drop table if exists {EXPECTED}; "
        f"create table {EXPECTED} ({columns}); insert into {EXPECTED} values {values_sql(rows)};"
    )


def rounded(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def snapshot(rows_of: Any) -> dict[str, list[list[Any]]]:
    """Every model's rows, in key order (floats rounded: sums in another order differ in the last bits)."""
    return {
        model: [[rounded(v) for v in row] for row in rows_of(f"select * from klaviyo_models.{model} order by 1")]
        for model in MODELS
    }


def test_models_on_duckdb_attribute_as_klaviyo_and_windows_say_and_increment_like_a_rebuild(
    tmp_path: Path, emu: Emulator
) -> None:
    meltano = meltano_for_tests(tmp_path, ["tap-klaviyo", "target-duckdb", "dbt-duckdb"])
    database = tmp_path / "warehouse.duckdb"
    env = {**tap_env(emu, **QUICK), "TARGET_DUCKDB_FILEPATH": str(database), "DBT_DUCKDB_PATH": str(database)}
    account = emu.account
    now = datetime.now(timezone.utc).replace(microsecond=0)
    late_order = add_order(account, account.add_profile(created=now - timedelta(days=10)), now - timedelta(hours=2))

    meltano("run", "tap-klaviyo", "target-duckdb", env=env)
    duckdb(meltano, database, expected_table_sql(expected_attributions(account)), write=True)
    out = dbt(meltano, "dbt-duckdb", env, tmp_path, "build", "--vars", dbt_vars())
    assert "assert_attribution_matches_expected" in out and "PASS=" in out
    klaviyo_credited = duckdb(
        meltano, database, "select count(*) from klaviyo_models.klaviyo__events where attribution_source = 'klaviyo'"
    )
    assert klaviyo_credited == [[len({row[0] for row in expected_attributions(account)})]]

    touches = add_touches_before_orders(account, datetime.now(timezone.utc).replace(microsecond=0), late_order)
    meltano("run", "tap-klaviyo", "target-duckdb", env=env)
    dbt(meltano, "dbt-duckdb", env, tmp_path, "build", "--vars", dbt_vars())  # incremental
    incremental = snapshot(lambda sql: duckdb(meltano, database, sql))

    ids = ", ".join(f"'{e}'" for e in [*touches.credited, *touches.uncredited])
    rows = duckdb(
        meltano,
        database,
        "select event_id, attribution_source, attributed_event_id, campaign_message_id, "
        f"flow_message_id from klaviyo_models.klaviyo__events where event_id in ({ids})",
    )
    found = {row[0]: row[1:] for row in rows}
    for order, touch in touches.credited.items():
        source, attributed, campaign_message, flow_message = found[order]
        assert (source, attributed) == ("last_touch", touch), order
        assert message_of(account, touch) in (campaign_message, flow_message)
    for order in touches.uncredited:
        assert found[order] == [None, None, None, None], order

    dbt(meltano, "dbt-duckdb", env, tmp_path, "build", "--full-refresh", "--vars", dbt_vars())
    rebuilt = snapshot(lambda sql: duckdb(meltano, database, sql))
    assert {m: len(r) for m, r in incremental.items()} == {m: len(r) for m, r in rebuilt.items()}
    for model in MODELS:
        assert incremental[model] == rebuilt[model], model


# -- PostgreSQL ----------------------------------------------------------------------------------------------


def test_models_on_postgres_after_meltano_run(tmp_path: Path, emu: Emulator) -> None:
    postgres: Postgres = postgres_or_skip()
    meltano = meltano_for_tests(tmp_path, ["tap-klaviyo", "target-postgres", "dbt-postgres"])
    schema = "klaviyo_models_e2e"
    postgres.query(f'drop schema if exists "{schema}" cascade; drop schema if exists klaviyo_models cascade')
    target = postgres.target_env
    env = {
        **tap_env(emu, **QUICK),
        **target,
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
        **{name.replace("TARGET_POSTGRES_", "DBT_POSTGRES_"): value for name, value in target.items()},
    }
    meltano("run", "tap-klaviyo", "target-postgres", env=env)
    postgres.query(expected_table_sql(expected_attributions(emu.account)))
    out = dbt(meltano, "dbt-postgres", env, tmp_path, "build", "--vars", dbt_vars({"klaviyo_schema": schema}))
    assert "assert_attribution_matches_expected" in out

    events = postgres.query(f"select count(*) from {schema}.event")
    assert postgres.query("select count(*) from klaviyo_models.klaviyo__events") == events
    revenue = postgres.query("select round(sum(attributed_revenue)::numeric, 2) from klaviyo_models.klaviyo__campaigns")
    credited = postgres.query(
        "select round(sum(revenue)::numeric, 2) from klaviyo_models.klaviyo__events "
        "where is_conversion and attribution_source in ('klaviyo', 'last_touch') and campaign_id is not null"
    )
    assert revenue == credited and revenue != [[""]]
