"""What bytecode a Lambda archive or layer must carry, for the interpreter the tests run on.

``components/packaging.py`` adds ``__pycache__/*.pyc`` only when the build interpreter is the
Lambda runtime's version (3.13): bytecode is version specific, and the read-only
``/var/task`` cannot cache what the runtime compiles. So on 3.13 an archive holds one
unchecked-hash ``.pyc`` compiled by 3.13 for each of its ``.py`` files, and on any other
version none at all.
"""

from __future__ import annotations

import importlib.util
import marshal
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

from components import packaging

BUILT_ON_RUNTIME_VERSION = sys.version_info[:2] == packaging.RUNTIME_VERSION
RUNTIME_CACHE_TAG = "cpython-{}{}".format(*packaging.RUNTIME_VERSION)


def is_bytecode(name: str) -> bool:
    """Anything compiled or cached: checked by :func:`check_bytecode` against what must be there."""
    return name.endswith((".pyc", ".pyo")) or "/__pycache__/" in f"/{name}"


def without_bytecode(names: Iterable[str]) -> set[str]:
    """The entries but the ``__pycache__/*.pyc`` a build adds: what the other checks look at on
    every version (a stray ``.pyc`` or ``.pyo`` elsewhere stays, for them to refuse)."""
    return {n for n in names if not (n.endswith(".pyc") and "/__pycache__/" in f"/{n}")}


def bytecode_for(sources: Iterable[str]) -> set[str]:
    """The ``.pyc`` entries a runtime-version build adds for ``sources``."""
    out = set()
    for name in sources:
        if name.endswith(".py"):
            folder, _, filename = name.rpartition("/")
            out.add(f"{folder}/__pycache__/{filename[:-3]}.{RUNTIME_CACHE_TAG}.pyc".lstrip("/"))
    return out


def check_bytecode(path: Path) -> None:
    """The archive at ``path`` carries exactly the bytecode this interpreter's build must ship."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        shipped = {n for n in names if is_bytecode(n)}
        if not BUILT_ON_RUNTIME_VERSION:
            assert shipped == set(), f"{path.name}: bytecode from a {sys.version_info[0]}.{sys.version_info[1]} build"
            return
        sources = sorted(n for n in names if not is_bytecode(n))
        assert shipped == bytecode_for(sources), f"{path.name}: one .pyc per .py, no others"
        for source in sources:
            if not source.endswith(".py"):
                continue
            (pyc,) = bytecode_for([source])
            data = archive.read(pyc)
            # Compiled by the runtime's version (this interpreter is it), unchecked-hash, from this very file.
            assert data[:4] == importlib.util.MAGIC_NUMBER, pyc
            assert int.from_bytes(data[4:8], "little") == 0b01, f"{pyc}: hash-based, unchecked"
            assert data[8:16] == importlib.util.source_hash(archive.read(source)), f"{pyc}: compiled from {source}"
            assert marshal.loads(data[16:]).co_filename == source, pyc  # noqa: S302 - our own archive
