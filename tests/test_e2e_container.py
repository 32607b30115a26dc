"""The container recipe (orchestrate/container/Dockerfile), built without Docker: this machine reaches no
image registry, so the base image (Python) is stood in for by a fresh virtual environment, and every other
instruction is carried out as Docker would: ARG defaults and ENV into the environment, COPY of the build
context less what Dockerfile.dockerignore leaves out, each RUN through the shell in WORKDIR. The result must
then sync an emulated account through its ENTRYPOINT, read-only as the image is, with nothing more installed.
An instruction this test does not know fails it, so the recipe cannot outgrow what is tested.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from klaviyo_emulator import DEMO_API_KEY, Emulator, EmulatorConfig
from tests.harness import ROOT
from tests.meltano_e2e import clean_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

DOCKERFILE = ROOT / "orchestrate" / "container" / "Dockerfile"


@dataclass
class Recipe:
    """A Dockerfile's instructions, in order, with its continuation lines joined."""

    steps: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Recipe:
        recipe, pending = cls(), ""
        for line in path.read_text().splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending += line.rstrip().removesuffix("\\") + " "
            if not line.rstrip().endswith("\\"):
                instruction, _, rest = pending.strip().partition(" ")
                recipe.steps.append((instruction.upper(), rest.strip()))
                pending = ""
        return recipe


def ignored(context: Path, patterns: list[str]) -> Callable[[str, list[str]], set[str]]:
    """shutil's ignore function for .dockerignore patterns (paths from the context, `**/` any depth)."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        relative = Path(directory).relative_to(context)
        out = set()
        for name in names:
            path = str(relative / name) if str(relative) != "." else name
            for pattern in patterns:
                bare = pattern.removeprefix("**/")
                if fnmatch.fnmatch(path, pattern) or (pattern.startswith("**/") and fnmatch.fnmatch(name, bare)):
                    out.add(name)
        return out

    return ignore


def dockerignore(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def build(recipe: Recipe, image: Path) -> tuple[dict[str, str], Path, list[str]]:
    """Carry the recipe out into `image` (a directory standing for the image's filesystem): the environment,
    working directory and entrypoint a container of it would start with."""
    subprocess.run([sys.executable, "-m", "venv", str(image / "python")], check=True)
    env = {**clean_env(), "PATH": f"{image / 'python' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    workdir, entrypoint = image, []
    for instruction, rest in recipe.steps:
        if instruction == "FROM":
            assert rest == "${PYTHON_IMAGE}", "the base image is stood in for by a Python virtual environment"
        elif instruction == "ARG":
            name, _, default = rest.partition("=")
            env.setdefault(name, default)
        elif instruction == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(rest)))
        elif instruction == "WORKDIR":
            workdir = image / rest.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction == "COPY":
            assert rest == ". .", rest
            patterns = dockerignore(DOCKERFILE.with_name("Dockerfile.dockerignore"))
            shutil.copytree(ROOT, workdir, ignore=ignored(ROOT, patterns), dirs_exist_ok=True)
        elif instruction == "RUN":
            proc = subprocess.run(["sh", "-c", rest], cwd=workdir, env=env, capture_output=True, text=True, check=False)
            assert proc.returncode == 0, f"RUN {rest}:\n{(proc.stdout + proc.stderr)[-5000:]}"
        elif instruction == "ENTRYPOINT":
            entrypoint = list(json.loads(rest))
        elif instruction != "CMD":
            pytest.fail(f"{DOCKERFILE.name}: {instruction} is not carried out by this test: teach it")
    return env, workdir, entrypoint


def test_the_image_recipe_installs_the_project_and_syncs_an_account_read_only(tmp_path: Path) -> None:
    env, project, entrypoint = build(Recipe.read(DOCKERFILE), tmp_path / "image")
    assert env["MELTANO_PROJECT_READONLY"] == "1" and entrypoint == ["meltano"]
    # What the build left out and put in.
    assert not (project / ".venv").exists() and not (project / ".git").exists()
    installed = {p.name for p in (project / ".meltano").glob("*/*") if (p / "venv").is_dir()}
    assert {"tap-klaviyo", "target-duckdb", "target-postgres", "dbt-duckdb"} <= installed, installed

    out = tmp_path / "out"
    out.mkdir()
    with Emulator(EmulatorConfig(size="tiny", rate_limit_scale=0.0)) as emu:
        run_env = {
            **env,
            "TAP_KLAVIYO_API_URL": emu.base_url,
            "TAP_KLAVIYO_API_KEY": DEMO_API_KEY,
            "TAP_KLAVIYO__SELECT": json.dumps(["profile.*", "list.*"]),
            "TARGET_JSONL_DESTINATION_PATH": str(out),
        }
        command = [*entrypoint, "run", "--no-install", "tap-klaviyo", "target-jsonl"]
        proc = subprocess.run(command, cwd=project, env=run_env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
        for stream in ("profile", "list"):
            lines = (out / f"{stream}.jsonl").read_text().splitlines()
            assert {json.loads(line)["id"] for line in lines} == emu.account.expected_ids(stream), stream
    # The project's files as built (read-only); the state in Meltano's system database.
    assert (project / "meltano.yml").read_bytes() == (ROOT / "meltano.yml").read_bytes()
    state = subprocess.run(
        [*entrypoint, "state", "get", "dev:tap-klaviyo-to-target-jsonl"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(state.stdout)["singer_state"]["bookmarks"]
