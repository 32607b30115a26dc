"""meltano.yml and the Meltano Hub definition: complete, in step with the tap, installable without the Hub."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from typing import Any

import pytest
import yaml

from tests.harness import ROOT
from tests.meltano_e2e import e2e_required, meltano_exe

LOADERS = {"target-duckdb", "target-postgres", "target-csv", "target-jsonl"}
# Setting kinds Meltano 4 accepts without a deprecation (its meltano.yml JSON schema).
KINDS = {
    "oauth",
    "date_iso8601",
    "file",
    "email",
    "integer",
    "decimal",
    "options",
    "object",
    "array",
    "boolean",
    "string",
}
SECRET_WORDS = ("password", "secret", "token", "key", "sqlalchemy_url")


@cache
def meltano_yml() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8")))


@cache
def about() -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "tap_klaviyo", "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return dict(json.loads(out))


def plugins() -> list[dict[str, Any]]:
    return [*meltano_yml()["plugins"]["extractors"], *meltano_yml()["plugins"]["loaders"]]


def extractor() -> dict[str, Any]:
    (tap,) = meltano_yml()["plugins"]["extractors"]
    return dict(tap)


def test_generated_definitions_are_fresh() -> None:
    """meltano.yml's extractor and hub/tap-klaviyo.yml follow the tap: `python scripts/meltano_plugin.py`."""
    proc = subprocess.run(
        [sys.executable, "scripts/meltano_plugin.py", "--check"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_every_plugin_is_defined_in_full() -> None:
    """Custom definitions (namespace, pip_url, executable, settings with kinds): `meltano install` needs no Hub."""
    # The third-party loaders the end-to-end tests use, and this project's own target (installed from the clone).
    assert {p["name"] for p in meltano_yml()["plugins"]["loaders"]} == {*LOADERS, "target-klaviyo"}
    for plugin in plugins():
        name = plugin["name"]
        assert "variant" not in plugin and "inherit_from" not in plugin, name
        for field in ("namespace", "pip_url", "executable", "settings", "label", "description"):
            assert plugin.get(field), f"{name} lacks {field}"
        for setting in plugin["settings"]:
            assert setting.get("kind") in KINDS, f"{name}.{setting['name']}: kind {setting.get('kind')}"
            assert setting.get("description"), f"{name}.{setting['name']} has no description"
            if any(word in setting["name"] for word in SECRET_WORDS) and setting["kind"] == "string":
                assert setting.get("sensitive") is True, f"{name}.{setting['name']} must be sensitive"
        if name in LOADERS:  # pinned: the proof of "no rows lost" holds for these versions
            assert "==" in plugin["pip_url"], plugin["pip_url"]


def test_extractor_matches_the_tap() -> None:
    tap = extractor()
    assert tap["pip_url"] == "-e ."  # installs this clone
    assert tap["executable"] == "tap-klaviyo"
    assert set(about()["capabilities"]) <= set(tap["capabilities"])
    settings = {s["name"]: s for s in tap["settings"]}
    schema = about()["settings"]["properties"]
    assert set(settings) == set(schema)
    for name, prop in schema.items():
        assert settings[name].get("sensitive", False) == bool(prop.get("secret")), name
    assert settings["api_key"]["sensitive"] and settings["client_secret"]["sensitive"]
    assert settings["start_date"]["kind"] == "date_iso8601"
    assert settings["custom_streams"]["kind"] == "array"


def test_jobs_and_environments_name_defined_plugins() -> None:
    names = {p["name"] for p in plugins()}
    jobs = meltano_yml()["jobs"]
    assert {"klaviyo-to-duckdb", "klaviyo-to-postgres", "klaviyo-to-csv", "klaviyo-to-jsonl"} <= {
        j["name"] for j in jobs
    }
    for job in jobs:
        for task in job["tasks"]:
            assert set(task.split()) <= names, task
    environments = {e["name"]: e for e in meltano_yml()["environments"]}
    assert meltano_yml()["default_environment"] in environments
    assert "demo" in environments


def test_meltano_yml_is_valid_for_meltano() -> None:
    """Against the JSON schema shipped with the installed Meltano (the e2e tests and scripts/sync.py install it)."""
    jsonschema = pytest.importorskip("jsonschema")
    if e2e_required():  # CI: whichever test comes first installs Meltano (the others wait for it), never a skip
        meltano_exe()
    found = sorted(
        (ROOT / ".meltano" / "meltano-venv").glob("lib/python*/site-packages/meltano/schemas/meltano.schema.json")
    )
    if not found:
        pytest.skip("Meltano is not installed yet (python scripts/sync.py installs it)")
    schema = json.loads(found[-1].read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(meltano_yml())


def test_hub_definition_is_submittable() -> None:
    hub = yaml.safe_load((ROOT / "hub" / "tap-klaviyo.yml").read_text(encoding="utf-8"))
    for field in (
        "name",
        "variant",
        "label",
        "description",
        "logo_url",
        "domain_url",
        "repo",
        "namespace",
        "pip_url",
        "executable",
        "maintenance_status",
        "keywords",
        "capabilities",
        "settings",
        "settings_group_validation",
    ):
        assert hub.get(field), f"hub/tap-klaviyo.yml lacks {field}"
    assert hub["pip_url"] != "-e ."  # the Hub installs from the repository, not a clone
    assert hub["settings"] == extractor()["settings"]
    assert hub["capabilities"] == extractor()["capabilities"]
