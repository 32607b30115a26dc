"""The published package: the sdist and the wheel as PyPI would serve them, installed where no clone is.

The editable install every other test uses reads the source tree, so a schema, the vendored OpenAPI spec or
a licence left out of the wheel would go unnoticed there. These tests build the sdist and the wheel (the
wheel from the unpacked sdist, as pip does from PyPI), install the wheel into a clean virtual environment
and run its `tap-klaviyo` against the emulator; then a fresh Meltano project adds the extractor from
`hub/tap-klaviyo.yml` with its pip_url pointed at that wheel and runs it into target-jsonl. Building and
installing need PyPI (hatchling, the tap's dependencies): without it a skip, under CI a failure, like the
other end-to-end tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

import pytest
import yaml

import tap_klaviyo
from klaviyo_emulator import Emulator
from tap_klaviyo.tap import TapKlaviyo
from tests.conftest import config_for
from tests.harness import ROOT, SyncResult, missing_records
from tests.meltano_e2e import clean_env, e2e_required, e2e_settings, meltano_exe, session_dir, sync_script, tap_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

DIST = str(TapKlaviyo.package_name)


def _run(cmd: list[str], *, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 600) -> str:
    """A command that must succeed; its output's tail in the failure otherwise."""
    proc = subprocess.run(
        cmd, cwd=cwd, env=dict(env or clean_env()), capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode:
        log = (proc.stdout + proc.stderr)[-6000:]
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{log}")
    return proc.stdout


def _needs_pypi(cmd: list[str], *, cwd: Path, what: str) -> None:
    """A step that downloads from PyPI: a skip without it (a failure under CI)."""
    proc = subprocess.run(cmd, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode:
        log = (proc.stdout + proc.stderr)[-4000:]
        if e2e_required():
            pytest.fail(f"{what} failed:\n{log}")
        pytest.skip(f"{what} failed (no access to PyPI?): {log[-300:]}")


@dataclass
class Dist:
    sdist: Path
    wheel: Path


@dataclass
class Installed:
    """The wheel installed into a virtual environment of its own."""

    venv: Path

    @property
    def tap(self) -> Path:
        return self.venv / "bin" / "tap-klaviyo"

    def run(self, *args: str, cwd: Path) -> str:
        """The installed command, outside the clone, with no tap settings from this environment."""
        env = {k: v for k, v in clean_env().items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
        return _run([str(self.tap), *args], cwd=cwd, env=env)


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """`python -m build`: the sdist, then the wheel built from the unpacked sdist; once per test session, however
    many workers run it (build's isolated environment made by uv, the dev extra's).

    The release workflow sets TEST_DIST_DIR to the files it is about to upload, so those are what is tested.
    """
    given = os.environ.get("TEST_DIST_DIR")
    if given:
        out = Path(given)
    else:
        shared = session_dir(tmp_path_factory)
        out = shared / "dist"
        with sync_script.locked(shared / "dist.lock"):
            if not out.is_dir():
                building = tmp_path_factory.mktemp("dist-building")
                cmd = [sys.executable, "-m", "build", "--installer", "uv", "--outdir", str(building), str(ROOT)]
                _needs_pypi(cmd, cwd=ROOT, what="python -m build")
                building.rename(out)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Dist(sdist, wheel)


@pytest.fixture(scope="module")
def installed(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    venv = tmp_path_factory.mktemp("wheel-venv")
    _run([sys.executable, "-m", "venv", str(venv)], cwd=venv)
    _needs_pypi([str(venv / "bin" / "pip"), "install", "-q", str(dist.wheel)], cwd=venv, what="pip install <wheel>")
    return Installed(venv)


def package_files() -> set[str]:
    """Every file of the import package in the source tree (code, schemas, the spec, its licence)."""
    package = ROOT / "tap_klaviyo"
    return {
        path.relative_to(ROOT).as_posix()
        for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_sdist_and_wheel_hold_the_whole_package(dist: Dist) -> None:
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = set(wheel.namelist())
        info = f"{DIST.replace('-', '_')}-{tap_klaviyo.__version__}.dist-info"
        metadata = HeaderParser().parsestr(wheel.read(f"{info}/METADATA").decode())
        licence = wheel.read(f"{info}/licenses/LICENSE").decode()
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    missing = package_files() - names
    assert not missing, f"left out of the wheel: {sorted(missing)}"
    assert "klaviyo_core/openapi/LICENSE" in names and "tap_klaviyo/schemas/event.json" in names
    assert metadata["Name"] == DIST
    assert metadata["Version"] == tap_klaviyo.__version__
    assert metadata["License-Expression"] == "Apache-2.0 AND MIT"
    assert licence == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    prefix = "Programming Language :: Python :: "
    pythons = {c.removeprefix(prefix) for c in metadata.get_all("Classifier") or [] if c.startswith(f"{prefix}3.")}
    assert pythons == {"3.10", "3.11", "3.12", "3.13"}  # the README's promise
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))
    assert set(ci["jobs"]["test"]["strategy"]["matrix"]["python-version"]) == pythons  # CI runs every one
    assert "tap-klaviyo = tap_klaviyo.tap:TapKlaviyo.cli" in entry_points

    with tarfile.open(dist.sdist) as sdist:
        root = f"{DIST.replace('-', '_')}-{tap_klaviyo.__version__}"
        members = {name.removeprefix(f"{root}/") for name in sdist.getnames()}
    assert {"LICENSE", "README.md", "pyproject.toml", "PKG-INFO"} <= members
    assert not package_files() - members, "left out of the sdist"
    assert not {m for m in members if m.startswith("tests/")}, "the sdist carries tests"


def test_installed_wheel_runs_about_discover_and_a_sync(
    installed: Installed, emulator: Emulator, tmp_path: Path
) -> None:
    where = installed.venv / "bin" / "python"
    module = _run([str(where), "-c", "import tap_klaviyo; print(tap_klaviyo.__file__)"], cwd=tmp_path)
    assert Path(module.strip()).is_relative_to(installed.venv), module  # the wheel, not this clone

    assert installed.run("--version", cwd=tmp_path).strip().startswith(f"tap-klaviyo v{tap_klaviyo.__version__},")
    about = json.loads(installed.run("--about", "--format=json", cwd=tmp_path))
    assert about["name"] == "tap-klaviyo"
    assert about["version"] == tap_klaviyo.__version__
    assert {"catalog", "discover", "state"} <= set(about["capabilities"])

    config = tmp_path / "config.json"
    config.write_text(json.dumps(config_for(emulator, **e2e_settings(emulator))), encoding="utf-8")
    catalog = json.loads(installed.run("--config", str(config), "--discover", cwd=tmp_path))
    expected = {
        entry["tap_stream_id"] for entry in TapKlaviyo(config={}, validate_config=False).catalog_dict["streams"]
    }
    assert {entry["tap_stream_id"] for entry in catalog["streams"]} == expected
    assert all(entry["schema"]["properties"] for entry in catalog["streams"])  # schemas read from the wheel

    result = SyncResult.parse(installed.run("--config", str(config), cwd=tmp_path), "")
    assert not missing_records(emulator.account, result.records), result.counts()
    assert result.state["bookmarks"]["event"], result.state


def _write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_meltano_adds_the_hub_definition_and_runs_it_into_jsonl(dist: Dist, emulator: Emulator, tmp_path: Path) -> None:
    """`meltano add extractor tap-klaviyo --from-ref hub/tap-klaviyo.yml` in a new project, then `meltano run`."""
    meltano = meltano_exe()
    hub = yaml.safe_load((ROOT / "hub" / "tap-klaviyo.yml").read_text(encoding="utf-8"))
    assert hub["pip_url"] == DIST  # what the Hub installs; here the same package, from the wheel just built
    hub["pip_url"] = str(dist.wheel)
    tap_ref = _write_yaml(tmp_path / "tap-klaviyo.yml", hub)
    loaders = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))["plugins"]["loaders"]
    (jsonl,) = (plugin for plugin in loaders if plugin["name"] == "target-jsonl")  # pinned, defined in full
    target_ref = _write_yaml(tmp_path / "target-jsonl.yml", jsonl)

    env = clean_env()
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["MELTANO_HUB_URL"] = "http://127.0.0.1:9/hub"  # nothing listens there: a Hub lookup would fail the test
    _run([str(meltano), "init", "project", "--no-usage-stats"], cwd=tmp_path, env=env)
    project = tmp_path / "project"
    _run([str(meltano), "add", "extractor", "tap-klaviyo", "--from-ref", str(tap_ref)], cwd=project, env=env)
    _run([str(meltano), "add", "loader", "target-jsonl", "--from-ref", str(target_ref)], cwd=project, env=env)

    out = tmp_path / "jsonl"
    out.mkdir()
    run_env = {**env, **tap_env(emulator, **e2e_settings(emulator)), "TARGET_JSONL_DESTINATION_PATH": str(out)}
    _run([str(meltano), "run", "tap-klaviyo", "target-jsonl"], cwd=project, env=run_env)

    venv = project / ".meltano" / "extractors" / "tap-klaviyo" / "venv"
    assert sorted(venv.glob(f"lib/python*/site-packages/{DIST.replace('-', '_')}-*.dist-info")), "not the wheel"
    records = {
        path.stem: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for path in out.glob("*.jsonl")
    }
    assert not missing_records(emulator.account, records), {stream: len(rows) for stream, rows in records.items()}
    state = json.loads(_run([str(meltano), "state", "get", "dev:tap-klaviyo-to-target-jsonl"], cwd=project, env=env))
    assert state["singer_state"]["bookmarks"], state
