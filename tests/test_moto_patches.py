"""The one undo log every emulator patches moto through (local/moto_patches.py)."""

from __future__ import annotations

import pytest

from local.moto_patches import Patches, SharedPatches, patched


class Base:
    def who(self) -> str:
        return "base"


class Child(Base):
    def own(self) -> str:
        return "own"


def test_undo_restores_what_the_target_held_and_uncovers_what_it_inherited():
    patches = Patches()
    patches.set(Child, "own", lambda self: "patched own")
    patches.set(Child, "who", lambda self: "patched who")
    registry = ["moto's"]
    patches.append(registry, "ours")
    assert (Child().own(), Child().who(), registry) == ("patched own", "patched who", ["moto's", "ours"])
    patches.undo()
    assert (Child().own(), Child().who(), registry) == ("own", "base", ["moto's"])
    assert "who" not in Child.__dict__, "an inherited attribute is deleted again, not copied onto the class"


def test_patched_undoes_on_an_exception():
    seen = []

    def failing_block() -> None:
        with patched(Child, "own", lambda self: "patched"):
            seen.append(Child().own())
            raise RuntimeError("the block failed")

    with pytest.raises(RuntimeError, match="the block failed"):
        failing_block()
    assert (seen, Child().own()) == (["patched"], "own")


def test_shared_patches_apply_once_and_undo_with_the_last_release():
    applied = []

    def apply(patches: Patches) -> None:
        applied.append(1)
        patches.set(Child, "own", lambda self: "shared")

    shared = SharedPatches(apply)
    shared.acquire()
    shared.acquire()
    shared.release()
    assert (len(applied), Child().own(), shared.active) == (1, "shared", True)
    shared.release()
    assert (Child().own(), shared.active) == ("own", False)


def test_the_step_functions_adapter_leaves_moto_as_it_found_it():
    """Its URL patterns too: every change it makes is in the undo log."""
    from moto import backend_index
    from moto.stepfunctions import urls

    from local.stepfunctions.adapter import StepFunctionsAdapter

    patterns, bases = list(backend_index.backend_url_patterns), list(urls.url_bases)
    with StepFunctionsAdapter():
        assert len(backend_index.backend_url_patterns) == len(patterns) + 1
        with pytest.raises(RuntimeError, match="already installed"):
            StepFunctionsAdapter().install()
    assert (backend_index.backend_url_patterns, urls.url_bases) == (patterns, bases)
