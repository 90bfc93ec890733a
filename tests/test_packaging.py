"""The code archives and the dependency layer, opened and checked."""

from __future__ import annotations

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


@pytest.mark.parametrize(
    "code",
    [packaging.router_code(), packaging.agent_step_code([{"name": "calculator"}])]
    + [packaging.tool_code(name) for name in available_tools()],
    ids=lambda c: c.key,
)
def test_function_archives_hold_only_their_code(code, tmp_path):
    path = packaging.build_function_archive(code, tmp_path)
    entries = names(path)
    assert "handlers/__init__.py" in entries
    assert "handlers/shared/store/base.py" in entries and "handlers/shared/table.py" in entries
    for module in code.modules:
        assert module in entries
    assert not any(n.startswith(("tests/", "local/", "components/", "bench/", ".venv/")) for n in entries)
    sources = without_bytecode(entries)
    own_handlers = {n for n in sources if n.startswith("handlers/") and not n.startswith("handlers/shared/")}
    assert own_handlers == {"handlers/__init__.py", *code.modules, *code.extra_files}
    check_bytecode(path)
    assert path.stat().st_size < 200 * 1024


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
