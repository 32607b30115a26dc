"""Regenerate the Meltano plugin definitions of tap-klaviyo from the tap itself.

Writes `hub/tap-klaviyo.yml` (a Meltano Hub extractor definition a maintainer can submit) and the extractor
block of `meltano.yml` (between its `generated:start`/`generated:end` comments) from
`tap-klaviyo --about --format=json`: every setting with its kind, label, description, default and
`sensitive: true` on secrets, every capability, and Meltano's `select` rules that leave opt-in streams out.

`python scripts/meltano_plugin.py` rewrites both; `--check` exits 1 when either is stale (a test runs it).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tap_klaviyo.reading.settings import OAUTH_SETTINGS  # noqa: E402
from tap_klaviyo.tap import TapKlaviyo  # noqa: E402

HUB_FILE = ROOT / "hub" / "tap-klaviyo.yml"
MELTANO_YML = ROOT / "meltano.yml"
BLOCK = re.compile(r"(  # generated:start[^\n]*\n).*?(  # generated:end)", re.DOTALL)
DEFAULT_OWNER = "your-org"
# Capabilities Meltano knows for extractors (its meltano.yml JSON schema); the SDK also answers `--test`.
MELTANO_EXTRACTOR_CAPABILITIES = (
    "properties",
    "catalog",
    "discover",
    "state",
    "about",
    "stream-maps",
    "activate-version",
    "batch",
    "test",
    "log-based",
    "schema-flattening",
    "structured-logging",
)


def about() -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "tap_klaviyo", "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return dict(json.loads(out))


def setting_kind(schema: dict[str, Any]) -> str:
    """Meltano's setting kind for one property of the tap's JSON schema."""
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else [t for t in types if t != "null"]
    if not types:  # anyOf/oneOf without a plain type (e.g. stream maps): an object in Meltano
        return "object"
    kind = types[0]
    if kind == "string":
        if schema.get("enum"):
            return "options"
        return "date_iso8601" if schema.get("format") == "date-time" else "string"
    # Meltano 4.4's `decimal` kind crashes ("Decimal is not JSON serializable") when the value comes from an
    # environment variable; the tap's numbers are days, whole in practice, and a fraction set in meltano.yml
    # still reaches the tap unchanged.
    return {"number": "integer"}.get(kind, kind)


def meltano_settings(schema: dict[str, Any]) -> list[dict[str, Any]]:
    settings: list[dict[str, Any]] = []
    for name, prop in schema["properties"].items():
        setting: dict[str, Any] = {"name": name, "kind": setting_kind(prop)}
        if prop.get("title"):
            setting["label"] = prop["title"]
        if prop.get("description"):
            setting["description"] = prop["description"]
        if "default" in prop and prop["default"] is not None:
            setting["value"] = prop["default"]
        if prop.get("enum"):
            setting["options"] = [{"label": str(v), "value": v} for v in prop["enum"]]
        if prop.get("secret"):
            setting["sensitive"] = True
        settings.append(setting)
    return settings


def capabilities(info: dict[str, Any]) -> list[str]:
    known = [c for c in info["capabilities"] if c in MELTANO_EXTRACTOR_CAPABILITIES]
    return sorted({*known, "test"})


def opt_in_streams() -> list[str]:
    tap = TapKlaviyo(config={}, validate_config=False)
    return sorted(name for name, stream in tap.streams.items() if not stream.selected_by_default)


def extractor(info: dict[str, Any]) -> dict[str, Any]:
    """The custom extractor of meltano.yml: installed from this clone, defined in full (no Hub lookup)."""
    return {
        "name": "tap-klaviyo",
        "namespace": "tap_klaviyo",
        "label": "Klaviyo",
        "description": info["description"].splitlines()[0],
        "pip_url": "-e .",
        "executable": "tap-klaviyo",
        "capabilities": capabilities(info),
        "settings_group_validation": [["api_key"], list(OAUTH_SETTINGS)],
        "settings": meltano_settings(info["settings"]),
        # The schema targets load into ($MELTANO_EXTRACT__LOAD_SCHEMA); an inheriting plugin sets its own.
        "load_schema": "klaviyo",
        # Meltano selects every stream by default; leave the tap's opt-in streams out unless asked for.
        "select": ["*.*", *(f"!{name}.*" for name in opt_in_streams())],
    }


def hub_definition(info: dict[str, Any], owner: str) -> dict[str, Any]:
    """The Hub's extractor: installed from PyPI under the distribution's own name (the command stays)."""
    repo = f"https://github.com/{owner}/tap-klaviyo"
    return {
        "name": "tap-klaviyo",
        "variant": owner,
        "label": "Klaviyo",
        "description": "Email and SMS marketing platform",
        "logo_url": "/assets/logos/extractors/klaviyo.png",
        "domain_url": "https://www.klaviyo.com",
        "repo": repo,
        "namespace": "tap_klaviyo",
        "pip_url": TapKlaviyo.package_name,
        "executable": "tap-klaviyo",
        "maintenance_status": "active",
        "keywords": ["meltano_sdk"],
        "capabilities": capabilities(info),
        "settings_group_validation": [["api_key"], list(OAUTH_SETTINGS)],
        "settings": meltano_settings(info["settings"]),
    }


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)


def current_owner() -> str:
    if HUB_FILE.exists():
        variant = (yaml.safe_load(HUB_FILE.read_text(encoding="utf-8")) or {}).get("variant")
        if variant:
            return str(variant)
    return DEFAULT_OWNER


def render_hub(info: dict[str, Any], owner: str) -> str:
    header = (
        "# Meltano Hub definition of tap-klaviyo, generated by scripts/meltano_plugin.py from `tap-klaviyo --about`.\n"
        f"# pip_url is the PyPI distribution ({TapKlaviyo.package_name}); `meltano add extractor tap-klaviyo\n"
        "# --from-ref hub/tap-klaviyo.yml` uses this file directly. To publish: set the GitHub owner\n"
        "# (`python scripts/meltano_plugin.py --owner ORG`), then submit this file to the meltano/hub\n"
        "# repository as _data/meltano/extractors/tap-klaviyo/ORG.yml.\n"
    )
    return header + dump(hub_definition(info, owner))


def render_meltano_yml(text: str, info: dict[str, Any]) -> str:
    match = BLOCK.search(text)
    if not match:
        msg = "meltano.yml lacks the '  # generated:start' / '  # generated:end' lines"
        raise SystemExit(msg)
    body = "".join(f"  {line}\n" if line else "\n" for line in dump([extractor(info)]).splitlines())
    return text[: match.start()] + match.group(1) + body + match.group(2) + text[match.end() :]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when a file is stale, change nothing")
    parser.add_argument("--owner", default=None, help="GitHub owner for the Hub file (kept from the file if unset)")
    args = parser.parse_args()
    info = about()
    wanted = {
        HUB_FILE: render_hub(info, args.owner or current_owner()),
        MELTANO_YML: render_meltano_yml(MELTANO_YML.read_text(encoding="utf-8"), info),
    }
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run python scripts/meltano_plugin.py", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
