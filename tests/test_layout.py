"""The layout's promises: every module imports alone, and imports point one way.

streams -> reading (the tap's machinery) -> api (the Klaviyo layer both commands share); the target's sinks ->
writing -> api. Nothing in api imports the tap or the target; no import sits under TYPE_CHECKING to hide a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tap_klaviyo"

#: Layer -> the layers its modules may import (besides themselves and the package root's version).
ALLOWED = {
    "api": {"api"},
    "reading": {"api", "reading"},
    "streams": {"api", "reading", "streams"},
    "writing": {"api", "writing"},
    "sinks": {"api", "writing", "sinks"},
    "tap": {"api", "reading", "streams", "tap"},
    "target": {"api", "writing", "sinks", "target"},
}


def modules() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "openapi" in parts:
            continue
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def layer(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None
    return parts[1] if parts[1] in ALLOWED else None


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """(module imported, whether under `if TYPE_CHECKING`) for every tap_klaviyo import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded.update(id(child) for child in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tap_klaviyo"):
            names = [f"{node.module}.{a.name}" for a in node.names]
            found += [(n, id(node) in guarded) for n in [node.module, *names]]
        elif isinstance(node, ast.Import):
            found += [(a.name, id(node) in guarded) for a in node.names if a.name.startswith("tap_klaviyo")]
    return found


@pytest.mark.parametrize("module", [m for m in modules() if not m.endswith("__main__")])
def test_imports_alone(module: str) -> None:
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-1500:]


@pytest.mark.parametrize("module", [m for m in modules() if layer(m)])
def test_imports_point_one_way(module: str) -> None:
    own = layer(module)
    assert own is not None
    path = PACKAGE.parent / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = PACKAGE.parent / module.replace(".", "/") / "__init__.py"
    for imported, under_type_checking in imports_of(path):
        assert not under_type_checking, f"{module} hides an import of {imported} under TYPE_CHECKING"
        other = layer(imported)
        if other is not None:
            assert other in ALLOWED[own], f"{module} ({own}) imports {imported} ({other})"


def test_layers_exist() -> None:
    names = {p.name for p in PACKAGE.iterdir() if p.is_dir()}
    assert {"api", "reading", "streams"} <= names
