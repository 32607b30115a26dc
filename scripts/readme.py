"""Regenerate the documentation's generated tables from the commands themselves: the README's stream table,
the tap's settings in docs/tap.md and the target's in docs/target.md (`--about --format=markdown`).

`python scripts/readme.py` rewrites them; `--check` exits 1 when one is stale (tests/test_docs_commands.py runs
it as CONTRIBUTING.md gives it).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tap_klaviyo.reading.children import SideloadedStream  # noqa: E402
from tap_klaviyo.reading.stream import KlaviyoStream  # noqa: E402
from tap_klaviyo.streams import STREAM_TYPES  # noqa: E402
from tap_klaviyo.tap import TapKlaviyo  # noqa: E402

README = ROOT / "README.md"
TAP_DOC = ROOT / "docs" / "tap.md"
TARGET_DOC = ROOT / "docs" / "target.md"


def about_markdown(command: str) -> str:
    """`<command> --about --format=markdown`: the installed tap or target (the entry points stay where the
    packages move)."""
    out = subprocess.run(
        [str(Path(sys.executable).parent / command), "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    # Nest the tool's headings under the page's "Settings" heading.
    return re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", out.strip(), flags=re.MULTILINE)


def replication(stream: KlaviyoStream) -> str:
    parent = stream.parent_stream_type
    if isinstance(stream, SideloadedStream) and parent is not None:
        return f"with each `{parent.name}` (no request of its own)"  # type: ignore[misc]
    key = stream.replication_key
    suffix = f" per `{parent.name}`" if parent is not None else ""  # type: ignore[misc]
    return (f"incremental on `{key}`" if key else "full table") + suffix


def streams_table() -> str:
    tap = TapKlaviyo(config={}, validate_config=False)
    rows = ["| stream | key | replication | endpoint | scopes |", "|---|---|---|---|---|"]
    for stream_type in STREAM_TYPES:
        stream = tap.streams[stream_type.name]  # type: ignore[misc]
        assert isinstance(stream, KlaviyoStream)
        rules = stream.endpoint
        keys = ", ".join(f"`{k}`" for k in stream.primary_keys)
        opt_in = " (opt-in)" if not stream.selected_by_default else ""
        rows.append(
            f"| `{stream.name}`{opt_in} | {keys} | {replication(stream)} | `{rules.method} {rules.path}` | "
            f"{', '.join(rules.scopes)} |"
        )
    return "\n".join(rows)


def sections() -> dict[Path, list[tuple[str, str]]]:
    """Per file: (marker, what goes between its start and end markers)."""
    return {
        README: [("streams", streams_table())],
        TAP_DOC: [("settings", about_markdown("tap-klaviyo"))],
        TARGET_DOC: [("target-settings", about_markdown("target-klaviyo"))],
    }


def render(path: Path, text: str, bodies: list[tuple[str, str]]) -> str:
    for marker, body in bodies:
        pattern = re.compile(rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)", re.DOTALL)
        if not pattern.search(text):
            msg = f"{path.relative_to(ROOT)} lacks the {marker} markers"
            raise SystemExit(msg)
        text = pattern.sub(partial(_fill, body), text)
    return text


def _fill(body: str, match: re.Match[str]) -> str:
    return match.group(1) + body + "\n" + match.group(2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stale = []
    for path, bodies in sections().items():
        current = path.read_text(encoding="utf-8")
        wanted = render(path, current, bodies)
        if wanted == current:
            continue
        if args.check:
            stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(wanted, encoding="utf-8")
    if stale:
        print(f"{', '.join(stale)} stale: run python scripts/readme.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
