"""The process's memory settings while a run owns it: fewer garbage collections, fewer malloc arenas.

Both are the process's, so only the run's owner (the command) changes them, and `stop` gives them back.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys

#: glibc's `mallopt` parameter for the most malloc arenas the process may create.
M_ARENA_MAX = -8
#: Arenas while a run owns the process: the main thread's, and one the workers share.
RUN_ARENAS = 2


def limit_malloc_arenas(count: int) -> bool:
    """glibc gives each thread that allocates its own arena, up to eight per core. Every worker decodes
    pages of up to a megabyte, and each arena keeps its own freed pages: with 40 workers a 10-million-event
    sync held 60 MB more than with two arenas, for no CPU saved (they allocate under the GIL). 0 is glibc's
    default. Nothing happens off glibc, or when the user set `MALLOC_ARENA_MAX` for the process."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, count))


class LeanMemory:
    """Pages of JSON are acyclic and short-lived: while a sync runs, collect less often and never walk what
    start-up loaded. With the default thresholds every page decoded on a worker triggers collections that
    traverse every buffered page, tripling the CPU a page costs. And the workers share malloc arenas.
    `stop` gives back what `start` found (the run calls it at its end, also when a stream failed); glibc keeps
    an arena limit it has already applied to the arenas it counted."""

    def __init__(self) -> None:
        self.saved: tuple[int, ...] | None = None
        self.arenas_limited = False

    def start(self) -> None:
        if self.saved is None:
            self.saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(50_000, 20, 100)
            self.arenas_limited = limit_malloc_arenas(RUN_ARENAS)

    def stop(self) -> None:
        if self.saved is not None:
            gc.set_threshold(*self.saved)
            gc.unfreeze()
            self.saved = None
            if self.arenas_limited:
                limit_malloc_arenas(0)
                self.arenas_limited = False
