"""moto's record of every model instance it constructs, held weakly.

moto's models (``moto.core.common_models.BaseModel``) append each instance they construct to
their class's ``instances_tracked`` list, for the dashboard of moto's server, and never drop
one: every item version a table ever held, every copy a Query returned, every snapshot of a
state machine an execution took, for the life of the process. ``WeakInstances`` takes the
list's place for the classes the local stack makes the most of: the dashboard still sees
every instance something else holds, and the rest can go.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any


class WeakInstances:
    """A model class's ``instances_tracked``, holding its instances weakly."""

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref] = {}

    def append(self, instance: Any) -> None:
        key = id(instance)
        self._refs[key] = weakref.ref(instance, lambda _, key=key: self._refs.pop(key, None))

    def __iter__(self) -> Iterator[Any]:
        alive = (ref() for ref in list(self._refs.values()))
        return iter([instance for instance in alive if instance is not None])

    def __len__(self) -> int:
        return len(list(iter(self)))
