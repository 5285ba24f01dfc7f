"""The engine stays headless: no engine module may import Textual or Rich.

Each check runs in a fresh interpreter, because this test process may already have imported
the app. Modules are discovered, so a module added later is covered without editing this file.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import engine

ROOT = Path(__file__).resolve().parent.parent
UI_PACKAGES = ("textual", "rich")

SUBMODULES = sorted(info.name for info in pkgutil.walk_packages(engine.__path__, prefix="engine."))
ENGINE_MODULES = ["engine", *SUBMODULES]

# Prints the UI packages (and their submodules) present after running the given code.
PROBE = """
import json, sys
{code}
print(json.dumps(sorted(n for n in sys.modules if n.split(".")[0] in {ui!r})))
"""


def ui_modules_after(code: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code, ui=UI_PACKAGES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_the_known_modules_are_discovered() -> None:
    for name in ("engine.data", "engine.device", "engine.custom", "engine.errors"):
        assert name in ENGINE_MODULES


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_module_imports_without_ui(module: str) -> None:
    assert ui_modules_after(f"import {module}") == []


def test_every_public_name_resolves_without_ui() -> None:
    code = "import engine\nfor name in engine.__all__: getattr(engine, name)"
    assert ui_modules_after(code) == []


def test_probe_sees_a_ui_import() -> None:
    # Without this, a probe that never saw anything would pass every test above.
    assert "rich" in ui_modules_after("import rich.text")
