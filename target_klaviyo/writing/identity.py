"""Profile identifiers to Klaviyo profile ids, looked up 100 at a time, several look-ups at once.

Only removals need ids (a membership is added by a profile import job that names the list). Ids found are
remembered for the run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from klaviyo_core.client import KlaviyoClient
from target_klaviyo.writing.rows import IDENTIFIERS, quoted

LOOKUP_PAGE = 100
#: Look-ups in flight at once (the pacer keeps them within the profiles endpoint's limits).
LOOKUPS_AT_ONCE = 4


def key_of(ids: dict[str, str]) -> tuple[str, str]:
    """The identifier a profile is matched on: email, else phone_number, else external_id."""
    for name in IDENTIFIERS:
        if name in ids:
            return name, ids[name]
    raise KeyError("no identifier")


class ProfileIds:
    """Run-wide cache of (identifier, value) -> profile id."""

    def __init__(self, client: KlaviyoClient) -> None:
        self.client = client
        self.known: dict[tuple[str, str], str] = {}
        self.lock = threading.Lock()

    def find(self, wanted: Iterable[dict[str, str]], what: str) -> dict[tuple[str, str], str]:
        """Ids of the profiles that exist (absent ones are left out)."""
        keys = {key_of(ids) for ids in wanted}
        with self.lock:
            missing = [key for key in keys if key not in self.known]
        queries: list[tuple[str, list[str]]] = []
        for name in IDENTIFIERS:
            values = sorted(value for kind, value in missing if kind == name)
            queries.extend((name, values[start : start + LOOKUP_PAGE]) for start in range(0, len(values), LOOKUP_PAGE))
        if len(queries) == 1:
            self.look_up(queries[0][0], queries[0][1], what)
        elif queries:
            with ThreadPoolExecutor(LOOKUPS_AT_ONCE, thread_name_prefix="lookups") as pool:
                list(pool.map(lambda query: self.look_up(query[0], query[1], what), queries))
        with self.lock:
            return {key: self.known[key] for key in keys if key in self.known}

    def look_up(self, name: str, values: list[str], what: str) -> None:
        params = {
            "filter": f"any({name},{quoted(values)})",
            "page[size]": str(LOOKUP_PAGE),
            "fields[profile]": ",".join(IDENTIFIERS),
        }
        for resource in self.client.pages("/api/profiles", params, what):
            value = (resource.get("attributes") or {}).get(name)
            if value is not None:
                with self.lock:
                    self.known[(name, str(value))] = str(resource["id"])
