"""Regenerate `tap_klaviyo/schemas/*.json` from the vendored OpenAPI spec and the overlay.

The overlay (`tap_klaviyo/schema_overlay.json`) lists fields real responses carry that the spec omits,
each with where it was seen; `spec.record_schema` merges it. Run after vendoring a new API revision or
editing the overlay: `python scripts/generate_schemas.py` (add `--check` to fail when the committed files
are stale, or when an overlay entry is no longer needed because the spec now declares it). Never edit the
generated files by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from klaviyo_core import spec
from tap_klaviyo.reading.stream import SCHEMAS_DIR
from tap_klaviyo.streams import STREAM_TYPES


def render(schema: dict[str, object]) -> str:
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def overlay_problems() -> list[str]:
    """Overlay entries the spec now declares itself (drop them), or for a type no GET endpoint returns."""
    problems = []
    by_type: dict[str | None, str] = {}
    for candidate in spec.collection_paths():
        if "/relationships/" not in candidate:  # those list identifiers only
            by_type.setdefault(spec.resource_type(candidate), candidate)
    for rtype, sections in spec.load_overlay().items():
        path = by_type.get(rtype)
        if path is None:
            problems.append(f"overlay type {rtype!r}: no GET collection in the spec returns it")
            continue
        own = spec.record_schema(path, overlay=False)["properties"]
        for dotted in sections.get("attributes", {}):
            node: dict[str, Any] | None = own
            *parents, leaf = dotted.split(".")
            for part in parents:
                child = node.get(part) if node else None
                node = child.get("properties") if isinstance(child, dict) else None
            if node and leaf in node:
                problems.append(f"overlay {rtype} attribute {dotted}: the spec declares it now; remove it")
        for name in sections.get("relationships", {}):
            if spec.relationship_column(name) in own:
                problems.append(f"overlay {rtype} relationship {name}: the spec declares it now; remove it")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed schema is stale")
    args = parser.parse_args()
    problems = overlay_problems()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    SCHEMAS_DIR.mkdir(exist_ok=True)
    wanted = {f"{cls.name}.json": render(cls.build_schema()) for cls in STREAM_TYPES}  # type: ignore[misc]
    stale = []
    for filename, text in wanted.items():
        target = SCHEMAS_DIR / filename
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            stale.append(filename)
            if not args.check:
                target.write_text(text, encoding="utf-8")
    extra = sorted(p.name for p in SCHEMAS_DIR.glob("*.json") if p.name not in wanted)
    for filename in extra:
        stale.append(filename)
        if not args.check:
            (SCHEMAS_DIR / filename).unlink()
    if args.check and stale:
        print(f"stale schemas: {', '.join(stale)}; run python scripts/generate_schemas.py", file=sys.stderr)
        return 1
    print(f"{len(wanted)} schemas {'checked' if args.check else 'written'}; {len(stale)} changed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
