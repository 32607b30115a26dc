"""The README's first command: `scripts/sync.py` syncs a Klaviyo account into DuckDB through Meltano.

With credentials (here the emulator posing as the user's own account, through `TAP_KLAVIYO_API_URL`), and
without (the bundled demo account): twice each, the second run incremental. These runs read one day of
reports and re-read none (`TAP_KLAVIYO_REPORT_HISTORY_DAYS=1`, `..._LOOKBACK_DAYS=0`; the demo environment
of meltano.yml does the same): the tap paces the values reports at Klaviyo's 2 requests a minute.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from klaviyo_emulator import Emulator, EmulatorConfig
from klaviyo_emulator.data import SIZES
from tests.harness import ROOT
from tests.meltano_e2e import Meltano, duckdb_query, meltano_for_tests, mutate_account, sync_script, tap_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

NEW_EVENTS: int = importlib.import_module("demo_account").NEW_EVENTS  # scripts/ is on the path (meltano_e2e)

QUICK_REPORTS = {"TAP_KLAVIYO_REPORT_HISTORY_DAYS": "1", "TAP_KLAVIYO_REPORT_LOOKBACK_DAYS": "0"}


def sync(env: Mapping[str, str], output: Path, *args: str) -> tuple[str, dict[str, tuple[int, int]]]:
    """`python scripts/sync.py` as the README runs it: its output, and per table (rows, new rows)."""
    proc = subprocess.run(
        [sys.executable, "scripts/sync.py", "--output", str(output), *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output_text = proc.stdout + proc.stderr
    assert proc.returncode == 0, output_text[-5000:]
    assert "Traceback" not in output_text
    counts = {m[1]: (int(m[2]), int(m[3])) for m in re.finditer(r"^(\S+)\s+(\d+)\s+(-?\d+)$", proc.stdout, re.M)}
    total = counts.pop("total")
    assert total == (sum(r for r, _ in counts.values()), sum(n for _, n in counts.values()))
    assert "Meltano's log" in proc.stdout
    return proc.stdout, counts


def new_rows(counts: Mapping[str, tuple[int, int]]) -> dict[str, int]:
    return {table: new for table, (_, new) in counts.items() if new}


def event_requests(emu: Emulator) -> int:
    return sum(1 for entry in emu.requests if entry.path == "/api/events")


def assert_real_account_syncs_twice(meltano: Meltano, emu: Emulator, env: Mapping[str, str], out: Path) -> str:
    """Both runs exit 0 and print their counts; the second reads only what changed and adds exactly that.
    (Loading only: the demo test below builds the models.)"""
    text, first = sync(env, out, "--no-models")
    assert "all history" in text
    assert all(rows == new for rows, new in first.values()), first
    assert first["profile"][0] == SIZES["tiny"].profiles and first["event"][0] > 0
    database = out / "klaviyo_account.duckdb"
    # The user's own first query, unqualified.
    assert duckdb_query(database, "select count(*) from klaviyo.event") == [[first["event"][0]]]
    assert meltano.state("dev:tap-klaviyo-to-target-duckdb")["singer_state"]["bookmarks"]

    events_first = event_requests(emu)
    emu.clear_log()
    created = mutate_account(emu)
    text, second = sync(env, out, "--no-models")
    assert "incremental (Meltano's state)" in text
    assert event_requests(emu) < events_first, "the second run reads events from its bookmark"
    added = new_rows(second)
    for table in ("global_exclusion", "list_exclusion"):  # a new profile may bring its suppressions
        added.pop(table, None)
    assert added == {stream: len(keys) for stream, keys in created.items()}
    return text


def test_sync_script_with_an_api_key_twice(tmp_path: Path) -> None:
    meltano = meltano_for_tests(tmp_path, ["tap-klaviyo", "target-duckdb"])  # installed once, or a clear skip
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0)) as emu:
        env = meltano.env({**tap_env(emu), **QUICK_REPORTS})
        assert_real_account_syncs_twice(meltano, emu, env, tmp_path / "out")


def test_sync_script_with_oauth_twice(tmp_path: Path) -> None:
    meltano = meltano_for_tests(tmp_path, ["tap-klaviyo", "target-duckdb"])
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0)) as emu:
        emu.add_oauth_client("client-e2e", "secret-e2e-value", refresh_token="refresh-e2e-1", rotate=True, grace_uses=1)
        oauth = {
            "TAP_KLAVIYO_API_URL": emu.base_url,
            "TAP_KLAVIYO_CLIENT_ID": "client-e2e",
            "TAP_KLAVIYO_CLIENT_SECRET": "secret-e2e-value",
            "TAP_KLAVIYO_REFRESH_TOKEN": "refresh-e2e-1",
        }
        text = assert_real_account_syncs_twice(meltano, emu, meltano.env({**oauth, **QUICK_REPORTS}), tmp_path / "out")
    # Meltano hands the tap a temporary copy of its settings: the rotated token cannot be saved there.
    assert "meltano config set tap-klaviyo refresh_token" in text
    for secret in ("secret-e2e-value", "refresh-e2e-1", "krt_"):
        assert secret not in text + (tmp_path / "out" / "meltano.log").read_text()


def test_sync_script_runs_the_demo_twice_the_second_incremental(tmp_path: Path) -> None:
    meltano = meltano_for_tests(tmp_path, ["tap-klaviyo", "target-duckdb"])
    env = meltano.env()  # no credentials: the demo; the test session's plugins and a state of its own
    out = tmp_path / "out"
    text, first = sync(env, out, "--size", "tiny")
    assert "a full sync" in text
    assert first["profile"] == (SIZES["tiny"].profiles, SIZES["tiny"].profiles)
    assert first["list"][0] == SIZES["tiny"].lists and first["event"][0] > 0
    assert (out / "demo.duckdb").exists()
    assert_models_built(text, out / "demo.duckdb")

    text, second = sync(env, out, "--size", "tiny")
    assert f"{NEW_EVENTS} new events since the last run; incremental" in text
    assert_models_built(text, out / "demo.duckdb")
    assert new_rows(second) == {"event": NEW_EVENTS, "profile": 1, "profile_list": 1}
    assert meltano.state("demo:tap-klaviyo-to-target-duckdb")["singer_state"]["bookmarks"]

    text, fresh = sync(env, out, "--size", "tiny", "--fresh", "--no-models")
    assert "a full sync" in text
    assert fresh == first, "--fresh starts over: a new database of the generated account"


def assert_models_built(text: str, database: Path) -> None:
    """The models were built, their tests passed, and the top campaigns and flows printed are the tables'."""
    assert re.search(r"Done\. PASS=\d+ WARN=0 ERROR=0", text), text[-3000:]
    lines = text.splitlines()
    for key in ("campaign", "flow"):
        at = next(i for i, line in enumerate(lines) if line.startswith(f"Top {key}s by attributed revenue"))
        rows = []
        for line in lines[at + 2 :]:
            if not line.strip() or line.startswith(("(", "Top")):
                break
            rows.append(float(line.split()[-2]))  # the revenue column
        top = duckdb_query(
            database,
            f"select round(attributed_revenue, 2) from klaviyo_models.klaviyo__{key}s "
            f"order by attributed_revenue desc, {key}_id limit 5",
        )
        assert rows and rows == [float(row[0]) for row in top], (key, rows, top)
    assert_klaviyo_column_explained(database)


# Per campaign or flow with a values report: revenue, klaviyo, and beside them what explains both: the
# revenue of the orders Klaviyo attributed (all of them; those of sends in the report's timeframe) and of
# the models' last touches. Klaviyo reports by send date: a campaign's orders count where it was sent, a
# flow's where the message credited with them was sent.
KLAVIYO_EXPLAINED = """
select r.{key}_id, round(r.attributed_revenue, 2), round(r.klaviyo_conversion_value, 2),
       round(sum(case when e.attribution_source = 'klaviyo' then e.revenue else 0 end), 2),
       round(sum(case when e.attribution_source = 'klaviyo' and {sent} >= r.klaviyo_report_start
                      and {sent} < r.klaviyo_report_end then e.revenue else 0 end), 2),
       round(sum(case when e.attribution_source = 'last_touch' then e.revenue else 0 end), 2)
from klaviyo_models.klaviyo__{key}s as r
left join klaviyo_models.klaviyo__events as e on e.{key}_id = r.{key}_id and e.is_conversion
left join klaviyo_models.klaviyo__events as touch on touch.event_id = e.attributed_event_id
where r.klaviyo_conversion_value is not null
group by r.{key}_id, r.attributed_revenue, r.klaviyo_conversion_value
"""


def assert_klaviyo_column_explained(database: Path) -> None:
    """The demo's `klaviyo` column (Klaviyo's values report) differs from `revenue` (the models' credited
    orders) only where the README says: orders of sends outside the report's year, and last touches."""
    for key, sent in (("campaign", "r.send_time"), ("flow", "touch.occurred_at")):
        rows = duckdb_query(database, KLAVIYO_EXPLAINED.format(key=key, sent=sent))
        assert rows, key
        for row_id, revenue, klaviyo, by_klaviyo, sent_in_report, last_touch in rows:
            assert klaviyo == sent_in_report, (key, row_id, klaviyo, sent_in_report)
            assert revenue == round(by_klaviyo + last_touch, 2), (key, row_id, revenue, by_klaviyo, last_touch)


def test_credentials_decide_between_demo_and_real_account(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    assert not sync_script.has_credentials({}, dotenv)
    assert sync_script.has_credentials({"TAP_KLAVIYO_API_KEY": "pk_x"}, dotenv)
    assert sync_script.has_credentials({"TAP_KLAVIYO_REFRESH_TOKEN": "r"}, dotenv)
    dotenv.write_text("TAP_KLAVIYO_API_KEY=''\n")
    assert not sync_script.has_credentials({}, dotenv)
    dotenv.write_text("OTHER=1\nTAP_KLAVIYO_API_KEY='pk_live'\n")
    assert sync_script.has_credentials({}, dotenv)
