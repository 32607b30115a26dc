"""Warn about record fields no schema declares, so Klaviyo's next undocumented field is seen, not lost.

Schema-driven targets drop what the stream's schema does not declare. The schemas come from the vendored
spec plus `schema_overlay.json`; when Klaviyo starts sending something else, this names it once per stream
so it can be added to the overlay.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

#: Nested objects are walked on a new top-level key set, and then on every this-many records.
DEEP_EVERY = 1000
#: Distinct top-level key sets remembered per stream (beyond this, only the periodic deep walk runs).
MAX_SHAPES = 256


class DriftCheck:
    """One stream's check: `check(record)` per record, cheap when the record's keys were seen before."""

    def __init__(self, stream: str, logger: logging.Logger, properties: Mapping[str, Any]) -> None:
        self.stream = stream
        self.logger = logger
        self.properties = properties
        self.known = frozenset(properties)
        self.nested = [(name, sub) for name, sub in properties.items() if _declared(sub)]
        self.shapes: set[tuple[str, ...]] = set()
        self.warned: set[str] = set()
        self.count = 0

    def check(self, record: Mapping[str, Any]) -> None:
        """Warn (once per attribute) about keys of `record` that the schema does not declare."""
        self.count += 1
        shape = tuple(record)
        if shape in self.shapes:
            if self.count % DEEP_EVERY == 0:
                self._walk(record, self.nested, "")
            return
        if len(self.shapes) < MAX_SHAPES:
            self.shapes.add(shape)
        for key in shape:
            if key not in self.known:
                self._warn(key)
        self._walk(record, self.nested, "")

    def _walk(self, value: Mapping[str, Any], nested: list[tuple[str, Any]], prefix: str) -> None:
        for name, declared in nested:
            child = value.get(name)
            schema = declared
            if isinstance(child, list):
                child = next((item for item in child if isinstance(item, Mapping)), None)
                schema = declared.get("items") or {}
            if not isinstance(child, Mapping):
                continue
            props: Mapping[str, Any] = schema.get("properties") or {}
            path = f"{prefix}{name}."
            for key in child:
                if key not in props:
                    self._warn(path + str(key))
            self._walk(child, [(k, s) for k, s in props.items() if _declared(s)], path)

    def _warn(self, attribute: str) -> None:
        if attribute in self.warned:
            return
        self.warned.add(attribute)
        self.logger.warning(
            "%s: Klaviyo sent the field %s, which the stream's schema does not declare: schema-driven targets "
            "drop it (add it to tap_klaviyo/schema_overlay.json)",
            self.stream,
            attribute,
        )


def _declared(schema: Any) -> bool:
    """The schema lists an object's properties (directly or as array items): its keys can be checked."""
    if not isinstance(schema, Mapping):
        return False
    if schema.get("properties"):
        return True
    items = schema.get("items")
    return isinstance(items, Mapping) and bool(items.get("properties"))
