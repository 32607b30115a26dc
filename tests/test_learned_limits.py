"""An account whose limits are a fifth of the published ones: the tap learns them from Klaviyo's RateLimit
headers and syncs everything with almost no 429s.

The emulator scales every window of every endpoint (burst, steady, daily) and answers, as Klaviyo does,
`RateLimit-Limit` (the steady limit), `RateLimit-Remaining` and `RateLimit-Reset` (seconds) on every response
but a 429. Real time: the limits are the subject, on the server's clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from klaviyo_emulator import Emulator, EmulatorConfig
from tests.conftest import config_for
from tests.harness import missing_records, run_tap, select_only

#: The streams with many requests on tight endpoints (campaign children are 10/s, 150/min published: 2/s here).
STREAMS = {
    "event",
    "profile",
    "list",
    "segment",
    "profile_list",
    "profile_segment",
    "campaign",
    "campaign_messages",
    "campaign_message_template",
    "campaign_recipient_estimation",
    "template",
    "metric",
}


@pytest.fixture
def reduced() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.2)) as emu:
        yield emu


def test_headers_carry_the_accounts_limits(reduced: Emulator) -> None:
    """What the tap learns from: the scaled steady limit, what is left of it, and seconds to its reset."""
    import requests

    from klaviyo_emulator import DEMO_API_KEY

    reply = requests.get(
        f"{reduced.base_url}/api/profiles",
        headers={"Authorization": f"Klaviyo-API-Key {DEMO_API_KEY}", "revision": "2026-07-15"},
        timeout=10,
    )
    assert reply.status_code == 200
    assert reply.headers["RateLimit-Limit"] == "150"  # 750/min published
    assert reply.headers["RateLimit-Remaining"] == "149"
    assert 1 <= int(reply.headers["RateLimit-Reset"]) <= 60


def test_a_sync_at_a_fifth_of_the_published_limits_is_complete_with_under_2_percent_429s(reduced: Emulator) -> None:
    config = config_for(reduced)
    result = run_tap(config, catalog=select_only(config, STREAMS))
    account = reduced.account
    assert {stream: n for stream, n in missing_records(account, result.records).items() if stream in STREAMS} == {}
    estimations = {r["id"] for r in result.records["campaign_recipient_estimation"]}
    assert estimations == account.expected_ids("campaign")
    statuses = Counter(entry.status for entry in reduced.requests)
    per_endpoint = Counter(f"{e.method} {e.template}" for e in reduced.requests)
    assert per_endpoint["GET /api/campaign-recipient-estimations/{id}"] >= 10  # the 2/s burst is exercised
    sent = sum(statuses.values())
    assert statuses[429] < 0.02 * sent, (statuses, per_endpoint)
