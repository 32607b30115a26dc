"""Every command in the docs runs as written.

Each fenced shell block of README.md, docs/*.md and CONTRIBUTING.md runs here, as written, in a copy of the
repository whose `.venv` is this test's virtual environment: unless it is named below with the reason it cannot
run offline, or it serves until stopped (then it must come up and stop cleanly on Ctrl-C). The README's test
command and the lint line must be what `.ci/run` runs, and the README's settings summary must name every
setting.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import ROOT

DOCS = ["README.md", "CONTRIBUTING.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
SHELL = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^([ \t]*)```(\S*)\n(.*?)^\1```[ \t]*$", re.MULTILINE | re.DOTALL)
#: A block's first line -> why it cannot run here (every other block runs).
NOT_OFFLINE = {
    "pipx install tap-klaviyo-sdk          # or: pip install tap-klaviyo-sdk": (
        "installs the published package from PyPI; tests/test_package.py installs the wheel built from this clone"
    ),
    "meltano add extractor tap-klaviyo --from-ref hub/tap-klaviyo.yml": (
        "needs Meltano and a Klaviyo key; tests/test_package.py runs these steps with the wheel built here"
    ),
    "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/python scripts/sync.py": (
        "installs Meltano, its loaders and dbt from PyPI (minutes); tests/test_e2e_sync.py runs scripts/sync.py"
    ),
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && .venv/bin/pytest": (
        "the test suite itself: .ci/run runs it (test_ci_runs_the_documented_commands)"
    ),
    ".venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy": (
        "lint and types: .ci/run runs them (test_ci_runs_the_documented_commands)"
    ),
    """echo '{"api_key": "pk_...", "start_date": "2025-01-01T00:00:00Z"}' > config.json""": (
        "reads a real account: needs a Klaviyo key (tests/test_errors.py and the sync tests run the tap)"
    ),
    "target-klaviyo --config config.json < rows.singer            # or: any-singer-tap | target-klaviyo ...": (
        "writes into a real account: needs a Klaviyo key (tests/test_target.py runs the target)"
    ),
    """echo '{"api_key": "pk_...", "rejects_file": "output/klaviyo_rejects.jsonl"}' > target.json""": (
        "writes into a real account: needs a Klaviyo key (tests/test_target.py runs the target)"
    ),
    "docker build -f orchestrate/container/Dockerfile -t tap-klaviyo-meltano .": (
        "needs Docker and a base image from a registry; tests/test_e2e_container.py carries the recipe out without"
    ),
    "alias meltano=$PWD/.meltano/meltano-venv/bin/meltano": (
        "needs the Meltano that scripts/sync.py installs, and a Klaviyo key (the e2e tests run these commands)"
    ),
}
#: A block's first line -> what it prints once it is up; it serves until Ctrl-C.
SERVES = {".venv/bin/python -m klaviyo_emulator --size demo": "Klaviyo emulator on http://127.0.0.1:"}


@dataclass(frozen=True)
class Block:
    path: str
    line: int
    language: str
    text: str

    @property
    def first(self) -> str:
        return next(line.strip() for line in self.text.splitlines() if line.strip())


def fenced_blocks() -> list[Block]:
    blocks = []
    for path in DOCS:
        text = (ROOT / path).read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            indent = match.group(1)
            body = "\n".join(line.removeprefix(indent) for line in match.group(3).splitlines())
            blocks.append(Block(path, text.count("\n", 0, match.start()) + 1, match.group(2), body))
    return blocks


def shell_blocks() -> list[Block]:
    return [b for b in fenced_blocks() if b.language in SHELL]


def runnable() -> list[Block]:
    return [b for b in shell_blocks() if b.first not in NOT_OFFLINE]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's files (tracked, and new ones git does not ignore) in a fresh folder, with this test's
    virtual environment as its `.venv`: what a clone with the README's install looks like."""
    where = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (where / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, where / name)
    (where / ".venv").symlink_to(Path(sys.prefix))
    return where


def shell_env() -> dict[str, str]:
    """A user's shell with the virtual environment active, and no Klaviyo settings of the machine's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_KLAVIYO", "TARGET_KLAVIYO"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_every_fence_says_its_language() -> None:
    """An untagged block could hide a command from this test."""
    untagged = [f"{b.path}:{b.line}" for b in fenced_blocks() if not b.language]
    assert not untagged, untagged


def test_every_listed_block_exists() -> None:
    """A block that changed or went away takes its entry here with it."""
    firsts = {b.first for b in shell_blocks()}
    assert set(NOT_OFFLINE) <= firsts, set(NOT_OFFLINE) - firsts
    assert set(SERVES) <= firsts, set(SERVES) - firsts


@pytest.mark.parametrize("block", runnable(), ids=lambda b: f"{b.path}:{b.line}")
def test_the_block_runs_as_written(block: Block, checkout: Path) -> None:
    if block.first in SERVES:
        serving = subprocess.Popen(
            ["bash", "-c", f"exec {block.text.strip()}"],
            cwd=checkout,
            env=shell_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert serving.stdout is not None
        up = serving.stdout.readline()
        serving.send_signal(signal.SIGINT)
        _out, err = serving.communicate(timeout=60)
        assert SERVES[block.first] in up, (up, err[-2000:])
        assert serving.returncode == 0, err[-2000:]
        return
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block.text],
        cwd=checkout,
        env=shell_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, (block.path, block.line, done.stdout[-2000:], done.stderr[-2000:])


def test_the_generated_tables_are_checked_by_a_block() -> None:
    """The tables scripts/readme.py writes (streams, the tap's and the target's settings) stay fresh because a
    block above runs its check."""
    assert any("scripts/readme.py --check" in b.text for b in runnable())


def test_ci_runs_the_documented_commands() -> None:
    """`.ci/run` runs the README's test command and CONTRIBUTING.md's lint line, with its own `.ci-venv`."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").replace('"$VENV"', ".venv").replace("$PYTHON", "python3")
    (test_command,) = [b.first for b in shell_blocks() if b.path == "README.md" and b.first.endswith("bin/pytest")]
    assert test_command in ci
    (lint,) = [b.first for b in shell_blocks() if "bin/mypy" in b.first]
    for command in lint.split(" && "):
        assert command in ci, command


def test_the_readme_names_every_setting() -> None:
    """The README's settings summary is hand-written: every setting of `tap-klaviyo --about` is in it."""
    about = subprocess.run(
        [str(Path(sys.executable).parent / "tap-klaviyo"), "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    summary = readme[readme.index("## Settings") : readme.index("\n## ", readme.index("## Settings") + 1)]
    missing = [name for name in json.loads(about)["settings"]["properties"] if f"`{name}`" not in summary]
    assert not missing, missing


def heading_anchors(text: str) -> set[str]:
    """GitHub's anchors for a page's headings (outside code blocks): lower case, punctuation dropped."""
    prose = FENCE.sub("", text)
    titles = re.findall(r"^#{1,6} (.+)$", prose, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-") for title in titles}


def test_every_link_between_the_pages_arrives() -> None:
    """A link to a file of this repository names one that exists, and its #anchor a heading there."""
    broken = []
    for path in DOCS:
        page = ROOT / path
        for target in re.findall(r"\]\(([^)\s]+)\)", FENCE.sub("", page.read_text(encoding="utf-8"))):
            if re.match(r"^[a-z]+:", target):
                continue
            name, _, anchor = target.partition("#")
            linked = (page.parent / name).resolve() if name else page
            if not linked.exists() or (anchor and anchor not in heading_anchors(linked.read_text(encoding="utf-8"))):
                broken.append(f"{path}: {target}")
    assert not broken, broken
