"""The run's memory settings: fewer malloc arenas and lean gc while an owner holds the process, given back."""

from __future__ import annotations

import gc
import platform

import pytest

from tap_klaviyo.reading import memory
from tap_klaviyo.reading.memory import LeanMemory


def test_an_owned_run_limits_malloc_arenas_and_gives_the_settings_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    asked: list[int] = []

    def limit(count: int) -> bool:
        asked.append(count)
        return True

    monkeypatch.setattr(memory, "limit_malloc_arenas", limit)
    before = gc.get_threshold()
    lean = LeanMemory()
    lean.start()
    assert asked == [memory.RUN_ARENAS] and lean.arenas_limited
    assert gc.get_threshold() != before
    lean.stop()
    assert asked == [memory.RUN_ARENAS, 0] and not lean.arenas_limited
    assert gc.get_threshold() == before


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_glibc_takes_the_arena_limit_unless_the_user_set_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert memory.limit_malloc_arenas(0) is True  # glibc's default: accepted, and changes nothing
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.limit_malloc_arenas(memory.RUN_ARENAS) is False
