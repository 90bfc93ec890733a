"""Lambda code archives and the dependency layer, built for arm64 and the function runtime.

Pure: no Pulumi import. Each function's archive holds ``handlers/__init__.py``, that
function's own modules and the modules of the shared package they import (directly or
through each other; an import inside a function counts): never tests, caches, a
virtualenv, or a shared module the function cannot reach. Archives
are deterministic (sorted entries, fixed timestamps) so an unchanged function never shows
a diff in ``pulumi preview``.

Third-party packages the handlers import (``handlers/requirements.txt``) go into one
layer, installed by pip for the function's platform (``manylinux2014_aarch64``, CPython
3.13), never the build machine's. Compiled ``.pyc`` files are added only when the
interpreter running the build has the runtime's minor version: bytecode is version
specific, and the read-only ``/var/task`` cannot cache what the runtime compiles.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from components.naming import function_key

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = ROOT / "handlers"
BUILD_DIR = ROOT / "build"
HANDLER_REQUIREMENTS = HANDLERS / "requirements.txt"

LAMBDA_RUNTIME = "python3.13"
RUNTIME_VERSION = (3, 13)
ARCHITECTURE = "arm64"
PIP_PLATFORM = "manylinux2014_aarch64"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_NEVER_SHIPPED = ("__pycache__", ".pytest_cache", "tests", ".venv")


@dataclass(frozen=True)
class FunctionCode:
    """What one Lambda function runs: its handler and the modules it needs beyond shared/."""

    key: str
    handler: str
    modules: tuple[str, ...]
    """Paths under the repository root, e.g. ``handlers/router.py``."""
    extra_files: Mapping[str, bytes] = field(default_factory=dict)
    """Generated files to add, by archive path."""


def router_code() -> FunctionCode:
    return FunctionCode("router", "handlers.router.handler", ("handlers/router.py",))


def agent_step_code(tool_specs: Iterable[dict]) -> FunctionCode:
    """The agent loop's prepare, record and stream functions. It offers the tools to the
    model but never runs them: it gets their specs as data, not their modules."""
    specs = json.dumps(list(tool_specs), indent=1, sort_keys=True).encode()
    return FunctionCode(
        "agent-step",
        "handlers.agent_step.prepare_handler",
        ("handlers/agent_step.py",),
        {"handlers/tool_specs.json": specs},
    )


def approval_code() -> FunctionCode:
    """The approval module: both its API handler and its state-machine request handler."""
    return FunctionCode("approval", "handlers.approval.handler", ("handlers/approval.py",))


def compensate_code(compensable_tools: Iterable[str]) -> FunctionCode:
    """The compensation handler with the modules of the tools it may have to undo."""
    modules = tuple(f"handlers/tools/{name}.py" for name in sorted(compensable_tools))
    return FunctionCode(
        "compensate", "handlers.compensate.handler", ("handlers/compensate.py", "handlers/tools/__init__.py", *modules)
    )


def edge_code() -> list[FunctionCode]:
    """The API's own functions: the JWT authorizer, the WebSocket connection handler and
    the health check."""
    return [
        FunctionCode("authorizer", "handlers.authorizer.handler", ("handlers/authorizer.py",)),
        FunctionCode("connection", "handlers.connection.handler", ("handlers/connection.py",)),
        FunctionCode("health", "handlers.health.handler", ("handlers/health.py",)),
    ]


def tool_code(name: str) -> FunctionCode:
    return FunctionCode(
        function_key(name),
        f"handlers.tools.{name}.handler",
        ("handlers/tools/__init__.py", f"handlers/tools/{name}.py"),
    )


SHARED_PACKAGE = "handlers.shared"


def _shared_files() -> dict[str, Path]:
    """Every file of the shared package that may ship, by archive path."""
    files = {}
    for path in sorted((HANDLERS / "shared").rglob("*")):
        relative = path.relative_to(ROOT)
        if (
            path.is_file()
            and not any(part in _NEVER_SHIPPED for part in relative.parts)
            and path.suffix in (".py", ".json")
        ):
            files[relative.as_posix()] = path
    return files


def _imported_names(name: str, source: bytes) -> set[str]:
    """The dotted names a module's import statements name, anywhere in it (an import inside a
    function included), relative ones resolved; ``from a import b`` names ``a`` and ``a.b``,
    which may be a module."""
    parts = name[: -len(".py")].split("/")
    package = parts[:-1]  # a module's package; for handlers/x/__init__.py, handlers.x itself
    names = set()
    for node in ast.walk(ast.parse(source, filename=name)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package[: len(package) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _shared_modules_needed(sources: Mapping[str, bytes], shared: Mapping[str, Path]) -> dict[str, bytes]:
    """The shared package's modules that ``sources`` import, followed through each other,
    with the ``__init__.py`` of every package on the way (Python runs them first).
    ``shared``: the package's files by archive path (``_shared_files``)."""
    needed: dict[str, bytes] = {}
    pending = [(name, content) for name, content in sources.items() if name.endswith(".py")]
    while pending:
        name, content = pending.pop()
        for dotted in _imported_names(name, content):
            if dotted != SHARED_PACKAGE and not dotted.startswith(SHARED_PACKAGE + "."):
                continue
            parts = dotted.split(".")
            for end in range(2, len(parts) + 1):
                base = "/".join(parts[:end])
                for candidate in (f"{base}/__init__.py", f"{base}.py"):
                    if candidate in shared and candidate not in needed:
                        needed[candidate] = shared[candidate].read_bytes()
                        pending.append((candidate, needed[candidate]))
    return needed


def _source_files(code: FunctionCode) -> dict[str, bytes]:
    files: dict[str, bytes] = {"handlers/__init__.py": (HANDLERS / "__init__.py").read_bytes()}
    for module in code.modules:
        files[module] = (ROOT / module).read_bytes()
    files.update(code.extra_files)
    shared = _shared_files()
    files.update(_shared_modules_needed(files, shared))
    # Data files of the shared package (none today) ship whole: no import statement names them.
    files.update({name: path.read_bytes() for name, path in shared.items() if not name.endswith(".py")})
    return files


def _with_bytecode(files: dict[str, bytes], runtime_version: tuple[int, int]) -> dict[str, bytes]:
    """Add ``__pycache__/*.pyc`` (unchecked-hash, so they stay valid whatever the file times)
    when this interpreter is the runtime's version; otherwise the files as they are."""
    if sys.version_info[:2] != tuple(runtime_version):
        return files
    out = dict(files)
    tag = sys.implementation.cache_tag
    with tempfile.TemporaryDirectory() as scratch:
        for name, content in files.items():
            if not name.endswith(".py"):
                continue
            source = Path(scratch) / "source.py"
            source.write_bytes(content)
            compiled = Path(scratch) / "compiled.pyc"
            py_compile.compile(
                str(source),
                cfile=str(compiled),
                dfile=name,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
            folder, _, filename = name.rpartition("/")
            out[f"{folder}/__pycache__/{filename[:-3]}.{tag}.pyc".lstrip("/")] = compiled.read_bytes()
    return out


def write_zip(files: Mapping[str, bytes], path: Path) -> Path:
    """A deterministic zip: sorted entries, fixed times and modes. Rewritten only on change."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    return path


def _inputs_digest(files: Mapping[str, bytes], runtime_version: tuple[int, int]) -> str:
    """Everything an archive is made from: its files, the runtime, this interpreter (whose
    bytecode it may ship) and this module's own code (how it is made)."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(f"{tuple(runtime_version)}|{sys.version}|{sys.implementation.cache_tag}".encode())
    for name in sorted(files):
        digest.update(f"\0{name}\0{len(files[name])}\0".encode())
        digest.update(files[name])
    return digest.hexdigest()


def _stamp_path(archive: Path) -> Path:
    return archive.with_name(f"{archive.name}.inputs")


def build_function_archive(
    code: FunctionCode, out_dir: Path = BUILD_DIR / "functions", runtime_version: tuple[int, int] = RUNTIME_VERSION
) -> Path:
    """The function's zip, rebuilt only when what it is made from changed: a stamp beside it
    (``<key>.zip.inputs``) holds the digest of its inputs and of the zip itself, so an
    unchanged function costs reading its sources, not compressing (and, on the runtime's
    Python, compiling) them again; a zip changed or removed by anything else is rebuilt."""
    files = _source_files(code)
    path = out_dir / f"{code.key}.zip"
    stamp = _stamp_path(path)
    inputs = _inputs_digest(files, runtime_version)
    try:
        current = stamp.read_text() == f"{inputs} {hashlib.sha256(path.read_bytes()).hexdigest()}\n"
    except FileNotFoundError:
        current = False
    if not current:
        write_zip(_with_bytecode(files, runtime_version), path)
        stamp.write_text(f"{inputs} {hashlib.sha256(path.read_bytes()).hexdigest()}\n")
    return path


def pip_install_target(target: Path, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
    """``pip install --target`` with this interpreter's pip, quietly."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--target",
        str(target),
    ]
    # our own pip with fixed arguments
    return subprocess.run([*command, *arguments], capture_output=not check, text=True, check=check)  # noqa: S603


def _requirements_key(requirements: Path, platform: str, runtime_version: tuple[int, int]) -> str:
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(f"{platform}|{runtime_version}|{sys.version_info[:2]}".encode())
    return digest.hexdigest()[:16]


def build_dependency_layer(
    requirements: Path = HANDLER_REQUIREMENTS,
    out_dir: Path = BUILD_DIR / "layers",
    platform: str = PIP_PLATFORM,
    runtime_version: tuple[int, int] = RUNTIME_VERSION,
) -> Path:
    """The layer zip (``python/...``) with ``requirements`` built for the function's platform.

    Cached by the requirements' content: pip runs only when they change.
    """
    target_zip = out_dir / f"deps-{_requirements_key(requirements, platform, runtime_version)}.zip"
    if target_zip.exists():
        return target_zip
    with tempfile.TemporaryDirectory() as scratch:
        site = Path(scratch) / "python"
        result = pip_install_target(
            site,
            "--no-compile",
            "--platform",
            platform,
            "--implementation",
            "cp",
            "--python-version",
            ".".join(map(str, runtime_version)),
            "--only-binary=:all:",
            "-r",
            str(requirements),
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"building the Lambda layer failed:\n{result.stderr.strip()}")
        files: dict[str, bytes] = {}
        for path in sorted(site.rglob("*")):
            relative = path.relative_to(Path(scratch))
            if path.is_file() and not any(part in _NEVER_SHIPPED for part in relative.parts):
                files[relative.as_posix()] = path.read_bytes()
        write_zip(_with_bytecode(files, runtime_version), target_zip)
    return target_zip


def host_layer_site(requirements: Path = HANDLER_REQUIREMENTS, out_dir: Path = BUILD_DIR / "host-layer") -> Path:
    """The same requirements installed for *this* machine, for benchmarks that import the
    handlers the way Lambda does (the arm64 layer cannot load here)."""
    site = out_dir / _requirements_key(requirements, "host", sys.version_info[:2])
    if not site.exists():
        scratch = site.with_suffix(".partial")
        shutil.rmtree(scratch, ignore_errors=True)
        pip_install_target(scratch, "-r", str(requirements))
        scratch.rename(site)
    return site
