"""Imports go one way: ``local/`` (the emulators, the stack) depends on ``components/`` and
``handlers/``, never the reverse. What is deployed must not need the emulator to import, and a
reader of a handler or a component never has to look into ``local/`` to know what it does."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOYED = ("components", "handlers")


def _modules(package: str) -> list[str]:
    """Every module of ``package`` as a dotted name (its ``__init__`` as the package)."""
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _imported(path: Path) -> set[str]:
    """The top-level packages a file imports, by parsing it (lazy imports inside functions too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", DEPLOYED)
def test_no_deployed_module_imports_local(package):
    offenders = sorted(
        str(path.relative_to(ROOT)) for path in (ROOT / package).rglob("*.py") if "local" in _imported(path)
    )
    assert offenders == [], f"{', '.join(offenders)} import local/: imports go one way, local -> {package}"


def test_importing_every_deployed_module_loads_nothing_of_local():
    """The same, at run time: a dynamic import (``importlib``) or one made by a third module
    would escape the parse. One fresh interpreter imports every module of both packages."""
    modules = [name for package in DEPLOYED for name in _modules(package)]
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'local' or m.startswith('local.'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603 - this interpreter, a fixed script
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [], "importing components/ and handlers/ loaded local/"
    assert len(modules) > 20, f"only {len(modules)} modules found: the walk missed the packages"


def test_the_stand_in_account_is_motos_default_account():
    """The mocks, the local stack's ARNs and moto's resources name one account."""
    from moto.core import DEFAULT_ACCOUNT_ID

    from components.naming import STAND_IN_ACCOUNT_ID

    assert STAND_IN_ACCOUNT_ID == DEFAULT_ACCOUNT_ID
