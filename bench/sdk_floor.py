"""The Pulumi SDK's floor under our mocks: the program's own resources, registered flat.

:func:`record` runs the real program once (untimed) and notes, for every resource it
registers, its Python class, type, name, resource options and the inputs the mocks saw.
:func:`run_floor` then runs a trivial program under the same ``run_program`` and the same
``AwsMocks``: it registers exactly those resources, with the same classes, the same input
and output properties (plain values: what the program's ``apply`` chains had computed),
the same options and the same provider, but no components as parents, no
``depends_on``, no ``Output`` wiring and no work of its own. What the real program costs
beyond this is ours; this much is the SDK's (and the mocks', which both pay alike).
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi import _types

from local.pulumi_mocks import ROOT, ProgramRun, provider_name, run_program


@dataclass(frozen=True)
class FloorResource:
    cls: type
    token: str
    name: str
    custom: bool
    inputs: dict[str, Any]
    """The constructor's keyword arguments: every input the mocks saw, by its Python name."""
    opts: pulumi.ResourceOptions
    """The options the resource was created with, less ``parent``, ``depends_on`` and providers."""
    provider: str | None
    """Name of the program's explicit provider it was registered with (``None``: a default one)."""


class _Component(pulumi.ComponentResource):
    """A component as a trivial program writes one: its own ``__init__``, no children."""

    def __init__(self, token: str, name: str, opts: pulumi.ResourceOptions) -> None:
        super().__init__(token, name, None, opts)


# What the programs below read: set by record() and run_floor() just before each run.
_captured: dict[str, tuple[type, pulumi.ResourceOptions]] = {}
_manifest: list[FloorResource] = []

_RECORD_PROGRAM = f"""
import runpy
import pulumi
from bench import sdk_floor
pulumi.runtime.register_stack_transformation(sdk_floor._capture)
runpy.run_path({str(ROOT / "__main__.py")!r}, run_name="__main__")
"""
_FLOOR_PROGRAM = """
from bench import sdk_floor
sdk_floor.replay(sdk_floor._manifest)
"""


def _capture(args: pulumi.ResourceTransformationArgs) -> None:
    _captured[args.name] = (type(args.resource), args.opts)


def _args_class(cls: type) -> type:
    """The ``<Resource>Args`` input type next to a generated resource class."""
    found = getattr(sys.modules[cls.__module__], f"{cls.__name__}Args", None)
    if found is None or not _types.is_input_type(found):
        raise RuntimeError(f"no input type {cls.__name__}Args beside {cls.__module__}.{cls.__name__}")
    return found


def _json_or_text(value: Any) -> Any:
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _program_file(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def record(config: dict[str, Any]) -> list[FloorResource]:
    """Run the real program with ``config`` once and return what the floor registers."""
    _captured.clear()
    try:
        with tempfile.TemporaryDirectory() as folder:
            run = run_program(config, "floor-record", program=_program_file(Path(folder), "record.py", _RECORD_PROGRAM))
        return _manifest_of(run)
    finally:
        _captured.clear()  # its options hold the recorded run's resources


def _manifest_of(run: ProgramRun) -> list[FloorResource]:
    explicit = {r.name for r in run.resources if r.typ.startswith("pulumi:providers:")}
    manifest = []
    for resource in run.resources:
        cls, opts = _captured[resource.name]
        floor_opts = opts._copy()
        floor_opts.parent = None
        floor_opts.depends_on = None
        floor_opts.provider = None
        floor_opts.providers = None
        inputs: dict[str, Any] = {}
        if resource.custom:
            names = _types.input_type_py_to_pulumi_names(_args_class(cls))
            inputs = {py: resource.inputs[name] for py, name in names.items() if name in resource.inputs}
            missing = set(resource.inputs) - set(names.values())
            if missing:
                raise RuntimeError(f"{resource.name}: inputs {sorted(missing)} are no argument of {cls.__name__}")
            if resource.typ.startswith("pulumi:providers:"):
                # A provider's inputs other than strings reach the engine as JSON text.
                inputs = {k: _json_or_text(v) for k, v in inputs.items()}
        provider = provider_name(resource.provider) if resource.custom and resource.provider else None
        manifest.append(
            FloorResource(
                cls=cls,
                token=resource.typ,
                name=resource.name,
                custom=resource.custom,
                inputs=inputs,
                opts=floor_opts,
                provider=provider if provider in explicit else None,
            )
        )
    return manifest


def replay(manifest: list[FloorResource]) -> None:
    """The floor program: each resource from its own constructor, flat, providers first."""
    providers: dict[str, pulumi.ProviderResource] = {}
    for item in sorted(manifest, key=lambda i: not i.token.startswith("pulumi:providers:")):
        opts = item.opts._copy()
        if item.provider is not None:
            opts.provider = providers[item.provider]
        if not item.custom:
            _Component(item.token, item.name, opts)
            continue
        resource = item.cls(item.name, opts=opts, **item.inputs)
        if isinstance(resource, pulumi.ProviderResource):
            providers[item.name] = resource


def run_floor(manifest: list[FloorResource]) -> ProgramRun:
    """One run of the floor program under ``run_program`` (config: none; it reads none)."""
    _manifest[:] = manifest
    with tempfile.TemporaryDirectory() as folder:
        return run_program({}, "floor", program=_program_file(Path(folder), "floor.py", _FLOOR_PROGRAM))
