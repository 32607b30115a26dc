"""Regenerate `tap_klaviyo/schemas/*.json` from the vendored OpenAPI spec.

Run after vendoring a new API revision: `python scripts/generate_schemas.py` (add `--check` to fail when
the committed files are stale). Never edit the generated files by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tap_klaviyo.client import SCHEMAS_DIR
from tap_klaviyo.streams import STREAM_TYPES


def render(schema: dict[str, object]) -> str:
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed schema is stale")
    args = parser.parse_args()
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
