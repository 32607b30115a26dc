"""The layout's promises: four packages that show the architecture, every module imports alone, imports point
one way.

klaviyo_core (the Klaviyo layer both commands build on) <- tap_klaviyo (streams -> reading) and
target_klaviyo (sinks -> writing); klaviyo_emulator stands alone (it reads the vendored spec as data). Nothing
in the core imports the tap or the target, the tap and the target never import each other, and no import sits
under TYPE_CHECKING to hide a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("klaviyo_core", "tap_klaviyo", "target_klaviyo", "klaviyo_emulator")

#: Layer -> the layers its modules may import (besides themselves).
ALLOWED = {
    "klaviyo_core": {"klaviyo_core"},
    "tap_klaviyo": {"klaviyo_core"},  # the package root: the version
    "tap_klaviyo.reading": {"klaviyo_core", "tap_klaviyo.reading"},
    "tap_klaviyo.streams": {"klaviyo_core", "tap_klaviyo.reading", "tap_klaviyo.streams"},
    "tap_klaviyo.tap": {"klaviyo_core", "tap_klaviyo.reading", "tap_klaviyo.streams", "tap_klaviyo"},
    "target_klaviyo.writing": {"klaviyo_core", "target_klaviyo.writing"},
    "target_klaviyo.sinks": {"klaviyo_core", "target_klaviyo.writing", "target_klaviyo.sinks"},
    "target_klaviyo.target": {"klaviyo_core", "target_klaviyo.writing", "target_klaviyo.sinks"},
    "klaviyo_emulator": {"klaviyo_emulator"},
}


def modules() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "openapi" in parts:
                continue
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def layer(module: str) -> str | None:
    """The longest layer name the module is, or sits under."""
    parts = module.split(".")
    for size in (2, 1):
        name = ".".join(parts[:size])
        if name in ALLOWED and len(parts) >= size:
            return name
    return None


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """(module imported, whether under `if TYPE_CHECKING`) for every import of the four packages in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded.update(id(child) for child in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            found.append((node.module, id(node) in guarded))
        elif isinstance(node, ast.Import):
            found += [(a.name, id(node) in guarded) for a in node.names if a.name.split(".")[0] in PACKAGES]
    return found


def path_of(module: str) -> Path:
    path = ROOT / (module.replace(".", "/") + ".py")
    return path if path.exists() else ROOT / module.replace(".", "/") / "__init__.py"


@pytest.mark.parametrize("module", [m for m in modules() if not m.endswith("__main__")])
def test_imports_alone(module: str) -> None:
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-1500:]


@pytest.mark.parametrize("module", [m for m in modules() if layer(m) and not m.endswith("__main__")])
def test_imports_point_one_way(module: str) -> None:
    own = layer(module)
    assert own is not None
    for imported, under_type_checking in imports_of(path_of(module)):
        assert not under_type_checking, f"{module} hides an import of {imported} under TYPE_CHECKING"
        other = layer(imported)
        if other is not None and other != own:
            assert other in ALLOWED[own], f"{module} ({own}) imports {imported} ({other})"


def test_the_four_packages_and_their_layers_exist() -> None:
    for package in PACKAGES:
        assert (ROOT / package / "__init__.py").exists(), package
    assert {"reading", "streams"} <= {p.name for p in (ROOT / "tap_klaviyo").iterdir() if p.is_dir()}
    assert {"sinks", "writing"} <= {p.name for p in (ROOT / "target_klaviyo").iterdir() if p.is_dir()}


def test_layer_of_a_module() -> None:
    assert layer("tap_klaviyo.reading.run") == "tap_klaviyo.reading"
    assert layer("target_klaviyo.sinks.profile") == "target_klaviyo.sinks"
    assert layer("klaviyo_core.pacing") == "klaviyo_core"
    assert layer("tap_klaviyo") == "tap_klaviyo"
    assert layer("json") is None
