"""The code archives and the dependency layer, opened and checked."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from components import packaging
from handlers.tools import available_tools, load_tool
from tests.archives import check_bytecode, without_bytecode


@pytest.fixture(scope="module")
def layer():
    return packaging.build_dependency_layer()


def names(path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def test_layer_carries_msgspec_built_for_arm64_and_python_313(layer):
    entries = names(layer)
    assert all(n.startswith("python/") for n in entries)
    extensions = [n for n in entries if n.endswith(".so")]
    assert extensions, "msgspec's compiled core is in the layer"
    assert all("cpython-313-aarch64-linux-gnu" in n for n in extensions), extensions
    assert not any("x86_64" in n for n in entries)
    wheel = next(n for n in entries if n.endswith(".dist-info/WHEEL"))
    with zipfile.ZipFile(layer) as archive:
        tags = archive.read(wheel).decode()
    assert "cp313-cp313-manylinux" in tags and "aarch64" in tags
    check_bytecode(layer)
    assert layer.stat().st_size < 5 * 1024 * 1024


def test_layer_is_cached_by_its_requirements(layer):
    assert packaging.build_dependency_layer() == layer


# A fargate-spot tool runs in the container image (the whole handlers package), never from a
# Lambda archive.
LAMBDA_TOOLS = [name for name in available_tools() if load_tool(name).runtime != "fargate-spot"]


@pytest.mark.parametrize(
    "code",
    [packaging.router_code(), packaging.agent_step_code([{"name": "calculator"}])]
    + [packaging.tool_code(name) for name in LAMBDA_TOOLS],
    ids=lambda c: c.key,
)
def test_function_archives_hold_only_their_code(code, tmp_path):
    path = packaging.build_function_archive(code, tmp_path)
    entries = names(path)
    assert "handlers/__init__.py" in entries
    assert "handlers/shared/store/base.py" in entries and "handlers/shared/table.py" in entries
    assert "handlers/shared/tokens.py" not in entries, "JWT verification is the authorizer's alone"
    for module in code.modules:
        assert module in entries
    assert not any(n.startswith(("tests/", "local/", "components/", "bench/", ".venv/")) for n in entries)
    sources = without_bytecode(entries)
    own_handlers = {n for n in sources if n.startswith("handlers/") and not n.startswith("handlers/shared/")}
    assert own_handlers == {"handlers/__init__.py", *code.modules, *code.extra_files}
    check_bytecode(path)
    # Sources and, built on 3.13, their bytecode: 15-231 KB (docs/architecture.md, Compute); the whole of
    # handlers/shared in each would be well over this.
    assert path.stat().st_size < 256 * 1024


ALL_CODE = [
    packaging.router_code(),
    packaging.agent_step_code([{"name": "calculator"}]),
    packaging.approval_code(),
    packaging.compensate_code(["memory", "create_ticket"]),
    *packaging.edge_code(),
    *(packaging.tool_code(name) for name in LAMBDA_TOOLS),
]


@pytest.mark.parametrize("code", ALL_CODE, ids=lambda c: c.key)
def test_each_archive_alone_imports_its_handler(code, tmp_path):
    """What Lambda does at a cold start: the archive's files and the installed packages, not
    this repository, on the path; every shared module the function imports must be there."""
    path = packaging.build_function_archive(code, tmp_path / "zip")
    task = tmp_path / "task"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(task)
    module, _, function = code.handler.rpartition(".")
    # -I: no current directory, PYTHONPATH or user site on the path; the archive goes first.
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import importlib;"
        " m = importlib.import_module(sys.argv[2].rpartition('.')[0]);"
        " assert m.__file__.startswith(sys.argv[1]), m.__file__;"
        " assert callable(getattr(m, sys.argv[2].rpartition('.')[2]))"
    )
    result = subprocess.run(  # noqa: S603 (this interpreter, a fixed script)
        [sys.executable, "-I", "-c", script, str(task), code.handler],
        cwd=task,
        capture_output=True,
        text=True,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": os.environ.get("PATH", "")},
        timeout=60,
    )
    assert result.returncode == 0, f"{module}.{function} from its archive alone:\n{result.stderr}"


def test_the_import_closure_follows_lazy_relative_and_from_imports():
    source = b"""
import json
from handlers.shared import ids
from handlers.shared.store import Store


def later():
    from handlers.shared.llm import client  # only when called: still shipped
"""
    needed = packaging._shared_modules_needed({"handlers/x.py": source}, packaging._shared_files())
    assert {"handlers/shared/__init__.py", "handlers/shared/ids.py", "handlers/shared/store/__init__.py"} <= set(needed)
    assert "handlers/shared/llm/client.py" in needed and "handlers/shared/llm/__init__.py" in needed
    assert "handlers/shared/store/base.py" in needed, "followed through store/__init__.py"
    assert "handlers/shared/tokens.py" not in needed
    relative = packaging._imported_names("handlers/shared/store/tasks.py", b"from .base import X\nfrom .. import ids")
    assert {"handlers.shared.store.base", "handlers.shared", "handlers.shared.ids"} <= relative


def test_archives_are_deterministic(tmp_path):
    first = packaging.build_function_archive(packaging.router_code(), tmp_path / "a").read_bytes()
    second = packaging.build_function_archive(packaging.router_code(), tmp_path / "b").read_bytes()
    assert first == second


def test_agent_step_archive_carries_the_tool_specs_not_the_tools(tmp_path):
    specs = [load_tool(name).spec() for name in ("calculator", "memory")]
    path = packaging.build_function_archive(packaging.agent_step_code(specs), tmp_path)
    with zipfile.ZipFile(path) as archive:
        shipped = archive.read("handlers/tool_specs.json")
        assert not any(n.startswith("handlers/tools/") for n in archive.namelist())
    import json

    assert [s["name"] for s in json.loads(shipped)] == ["calculator", "memory"]


def test_bytecode_is_shipped_when_the_build_interpreter_matches_the_runtime(tmp_path):
    here = sys.version_info[:2]
    path = packaging.build_function_archive(packaging.router_code(), tmp_path, runtime_version=here)
    entries = names(path)
    tag = sys.implementation.cache_tag
    assert f"handlers/__pycache__/router.{tag}.pyc" in entries
    assert f"handlers/shared/store/__pycache__/base.{tag}.pyc" in entries
    # Unchecked-hash pycs: valid whatever the extracted files' times are.
    with zipfile.ZipFile(path) as archive:
        flags = int.from_bytes(archive.read(f"handlers/__pycache__/router.{tag}.pyc")[4:8], "little")
    assert flags == 0b01, "hash-based, unchecked"
    mismatched = packaging.build_function_archive(packaging.router_code(), tmp_path / "other", runtime_version=(3, 99))
    assert not any(n.endswith(".pyc") for n in names(mismatched))


def test_an_unchanged_archive_is_not_rebuilt_but_a_changed_or_tampered_one_is(tmp_path, monkeypatch):
    built = []
    write_zip = packaging.write_zip
    monkeypatch.setattr(packaging, "write_zip", lambda files, path: built.append(path) or write_zip(files, path))
    code = packaging.agent_step_code([{"name": "calculator"}])
    path = packaging.build_function_archive(code, tmp_path)
    original = path.read_bytes()
    assert packaging.build_function_archive(code, tmp_path) == path and len(built) == 1, "unchanged: not rebuilt"

    path.write_bytes(b"not a zip")
    packaging.build_function_archive(code, tmp_path)
    assert len(built) == 2 and path.read_bytes() == original, "tampered: rebuilt as it was"

    path.unlink()
    packaging.build_function_archive(code, tmp_path)
    assert len(built) == 3 and path.read_bytes() == original, "removed: rebuilt"

    changed = packaging.build_function_archive(packaging.agent_step_code([{"name": "memory"}]), tmp_path)
    assert len(built) == 4 and changed.read_bytes() != original, "other inputs: rebuilt"
    packaging.build_function_archive(code, tmp_path, runtime_version=(3, 99))
    assert len(built) == 5, "another runtime: rebuilt"
