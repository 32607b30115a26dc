"""The bundled demo account as a living account: what it was at the previous demo runs, plus new activity.

The emulator generates the same account every time it starts (from its size and seed). So that a second
demo run has something new to sync incrementally, every run after the first adds activity to it (new
events, and a new profile who joins a list), and a small file next to the demo's output remembers when: the
next run replays that history first, so the account holds the same records, with the same ids and
timestamps, as when the previous run read it. Deleting the file (the scripts' `--fresh`) starts over.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from klaviyo_emulator import DEMO_API_KEY, AccountData, Emulator, EmulatorConfig  # noqa: E402

NEW_EVENTS = 25  # per run after the first


@dataclass
class DemoAccount:
    """The running demo account: where it listens, its key, and what this run added."""

    emulator: Emulator
    new_events: int
    new_profiles: int

    @property
    def env(self) -> dict[str, str]:
        """Meltano's environment variables for the tap."""
        return {"TAP_KLAVIYO_API_URL": self.emulator.base_url, "TAP_KLAVIYO_API_KEY": DEMO_API_KEY}

    @property
    def config(self) -> dict[str, str]:
        """The tap's settings."""
        return {"api_url": self.emulator.base_url, "api_key": DEMO_API_KEY}


def add_activity(account: AccountData, when: datetime) -> None:
    """What happens in the account between two demo runs: orders and visits, and a sign-up to a list."""
    account.append_events(NEW_EVENTS, when=when)
    profile = account.add_profile(created=when)
    account.add_list_member(sorted(account.expected_ids("list"))[0], profile, joined_at=when)


def _history(activity_file: Path) -> list[datetime]:
    try:
        return [datetime.fromisoformat(when) for when in json.loads(activity_file.read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError):
        return []


@contextmanager
def demo_account(
    size: str, activity_file: Path, *, first_run: bool, rate_limit_scale: float = 1.0
) -> Iterator[DemoAccount]:
    """The demo account on a free local port while the block runs. On a first run it is the generated
    account as is (and its history is forgotten); on later runs it gains new activity, remembered."""
    history = [] if first_run else _history(activity_file)
    with Emulator(EmulatorConfig(size=size, rate_limit_scale=rate_limit_scale)) as emulator:
        for when in history:
            add_activity(emulator.account, when)
        new = 0
        if not first_run:
            now = datetime.now(timezone.utc).replace(microsecond=0)
            add_activity(emulator.account, now)
            history.append(now)
            new = 1
        activity_file.parent.mkdir(parents=True, exist_ok=True)
        activity_file.write_text(json.dumps([when.isoformat() for when in history]) + "\n", encoding="utf-8")
        yield DemoAccount(emulator, new_events=NEW_EVENTS * new, new_profiles=new)
