"""Shared fixtures: an emulator of a small Klaviyo account and a config pointing at it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from klaviyo_emulator import DEMO_API_KEY, Emulator, EmulatorConfig


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The end-to-end modules (the longest, up to minutes each) first, then the others; within each, the module
    with the most tests first. xdist hands out modules in this order (loadfile, `--no-loadscope-reorder` in
    pyproject.toml): the long ones start early and the run ends on short modules, so neither worker sits idle
    while the other finishes a minute-long test (by xdist's own order, tests per file, the one-test e2e
    modules came last). With `-n0` the long tests run first too."""
    per_module = Counter(item.path for item in items)
    items.sort(key=lambda item: (item.get_closest_marker("e2e") is None, -per_module[item.path]))


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """One tiny account for the read-only tests (no rate limits: they are tested on their own)."""
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0)) as emu:
        yield emu


@pytest.fixture
def fresh_emulator() -> Iterator[Emulator]:
    """An account a test may change (append events, add members) without disturbing others."""
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0)) as emu:
        yield emu


def config_for(emu: Emulator, **extra: Any) -> dict[str, Any]:
    return {"api_key": DEMO_API_KEY, "api_url": emu.base_url, **extra}


@pytest.fixture
def config(emulator: Emulator) -> dict[str, Any]:
    return config_for(emulator)


@pytest.fixture(scope="session")
def full_sync(emulator: Emulator) -> tuple[Any, list[Any]]:
    """One full sync of the tiny account, and every request it sent."""
    from tests.harness import run_tap

    emulator.clear_log()
    config = config_for(
        emulator,
        report_history_days=1,
        metric_aggregate_queries=[
            {
                "name": "daily_orders",
                "metric_id": emulator.account.metric_id("Placed Order"),
                "measurements": ["count", "sum_value", "unique"],
                "interval": "day",
            }
        ],
    )
    from tests.harness import select_only

    all_streams = {entry["tap_stream_id"] for entry in select_only(config, set())["streams"]}
    result = run_tap(config, catalog=select_only(config, all_streams))
    return result, list(emulator.requests)
