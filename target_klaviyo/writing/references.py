"""References between objects translated from the source account's ids to the target account's.

Ids mean nothing in another account: a segment definition's list, segment and metric ids (and a campaign's
audiences) are translated through names. The source account's names come from the same input (its `list`,
`segment` and `metric` rows, noted as they are read); the target account's ids are found by those names.
"""

from __future__ import annotations

import threading
from typing import Any

from target_klaviyo.writing.keyed import TargetObjects
from target_klaviyo.writing.lists import Lists
from target_klaviyo.writing.rows import RowError

SEGMENTS = "/api/segments"
METRICS = "/api/metrics"
IMAGES = "/api/images"
#: What the image stream and the translation read of the account's images (one read serves both).
IMAGE_FIELDS = {"fields[image]": "name,hidden"}
GROUP_KINDS = ("list", "segment")


class SourceNames:
    """kind (list, segment, metric, image) -> source id -> name, from the input's rows (thread-safe)."""

    def __init__(self) -> None:
        self.names: dict[str, dict[str, str]] = {"list": {}, "segment": {}, "metric": {}, "image": {}}
        self.lock = threading.Lock()

    def note(self, kind: str, row: dict[str, Any]) -> None:
        if row.get("id") and row.get("name"):
            with self.lock:
                self.names[kind][str(row["id"])] = str(row["name"])

    def name_of(self, kinds: tuple[str, ...], source_id: str) -> tuple[str, str] | None:
        with self.lock:
            for kind in kinds:
                name = self.names[kind].get(source_id)
                if name is not None:
                    return kind, name
        return None


class Translator:
    """Source ids -> target ids by name; None: not translatable yet (a RowError when `final`)."""

    def __init__(self, names: SourceNames, lists: Lists, objects: TargetObjects, what: str) -> None:
        self.names = names
        self.lists = lists
        self.segments = objects.of(SEGMENTS, {}, "name", what)
        self.metrics = objects.of(METRICS, {}, "name", what)
        self.images = objects.of(IMAGES, IMAGE_FIELDS, "name", what)
        self.what = what

    def group(self, source_id: str, final: bool) -> str | None:
        """A list's or segment's id in the target account."""
        named = self.names.name_of(GROUP_KINDS, source_id)
        if named is None:
            return unresolved(f"list or segment {source_id} is not named by the input's list or segment rows", final)
        kind, name = named
        if kind == "list":
            found = self.lists.find(name, self.what)
            if found is None and name in self.lists.would_create:
                found = f"dry-run:{name}"  # a dry run would have created it
        else:
            segment = self.segments.settled(name)
            found = None if segment is None else segment.id
        return found or unresolved(f"{kind} {name!r} is not in the target account", final)

    def metric(self, source_id: str, final: bool) -> str | None:
        named = self.names.name_of(("metric",), source_id)
        if named is None:
            return unresolved(f"metric {source_id} is not named by the input's metric rows", final)
        metric = self.metrics.find(named[1])
        if metric is None:
            # Klaviyo makes a metric from the first event of that name; the target never makes one.
            return unresolved(f"metric {named[1]!r} is not in the target account (it has no such event yet)", final)
        return metric.id

    def image(self, source_id: str, final: bool) -> str | None:
        """A message's image, by its name (the input's image rows)."""
        named = self.names.name_of(("image",), source_id)
        if named is None:
            return unresolved(f"image {source_id} is not named by the input's image rows", final)
        image = self.images.settled(named[1])
        return image.id if image is not None else unresolved(f"image {named[1]!r} is not in the target account", final)

    def definition(self, definition: Any, final: bool) -> Any:
        """The definition with every group and metric id translated; None while one is not translatable yet."""
        pending = False

        def walk(node: Any) -> Any:
            nonlocal pending
            if isinstance(node, dict):
                out: dict[str, Any] = {}
                for key, value in node.items():
                    if key == "group_ids" and isinstance(value, list):
                        ids = [self.group(str(gid), final) for gid in value]
                        pending = pending or None in ids
                        out[key] = ids
                    elif key == "metric_id" and isinstance(value, str):
                        found = self.metric(value, final)
                        pending = pending or found is None
                        out[key] = found
                    else:
                        out[key] = walk(value)
                return out
            if isinstance(node, list):
                return [walk(item) for item in node]
            return node

        translated = walk(definition)
        return None if pending else translated


def unresolved(reason: str, final: bool) -> str | None:
    """None (the row waits), or at the end of the input the row's reject."""
    if final:
        raise RowError(f"cannot translate a reference: {reason}")
    return None
