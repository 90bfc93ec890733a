"""One way to change moto at runtime, for every emulator in ``local/``.

Each emulator changes moto's classes and modules while it is installed (never moto's files):
the DynamoDB guard (``local/dynamodb/guard.py``), the Step Functions adapter
(``local/stepfunctions/adapter.py``) and the interpreter's helpers
(``local/stepfunctions/interpreter.py``: ``dispatching``, ``instant_retries``). Every change
goes through :class:`Patches`, which records what it replaced and undoes the changes last
first, so an uninstall leaves moto exactly as it found it:

- :class:`Patches`: an undo log of attribute changes and list entries;
- :func:`patched`: one attribute changed for a ``with`` block;
- :class:`SharedPatches`: patches that several installs share, applied by the first and
  undone by the last (two local stacks in one process share the DynamoDB guard's).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_MISSING = object()


class Patches:
    """Changes to moto, each recorded with what it replaced; :meth:`undo` reverts them all."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def set(self, target: Any, attribute: str, value: Any) -> None:
        """``target.attribute = value``. What ``target`` itself held is restored on undo (an
        attribute it only inherited is deleted again, so the inherited one shows through)."""
        old = target.__dict__.get(attribute, _MISSING)

        def restore() -> None:
            if old is _MISSING:
                delattr(target, attribute)
            else:
                setattr(target, attribute, old)

        setattr(target, attribute, value)
        self._undo.append(restore)

    def append(self, items: list, item: Any) -> None:
        """``items.append(item)``, removed again on undo (a registry moto reads, e.g. its URL patterns)."""
        items.append(item)
        self._undo.append(lambda: items.remove(item))

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()


@contextmanager
def patched(target: Any, attribute: str, value: Any) -> Iterator[None]:
    """``target.attribute`` is ``value`` while the block runs."""
    patches = Patches()
    patches.set(target, attribute, value)
    try:
        yield
    finally:
        patches.undo()


class SharedPatches:
    """Patches that nest: ``apply(patches)`` runs at the first :meth:`acquire`, and the last
    balancing :meth:`release` undoes them."""

    def __init__(self, apply: Callable[[Patches], None]) -> None:
        self._apply = apply
        self._patches = Patches()
        self._lock = threading.Lock()
        self._holders = 0

    def acquire(self) -> None:
        with self._lock:
            self._holders += 1
            if self._holders == 1:
                try:
                    self._apply(self._patches)
                except BaseException:
                    self._holders = 0
                    self._patches.undo()
                    raise

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0:
                self._patches.undo()

    @property
    def active(self) -> bool:
        return self._holders > 0
