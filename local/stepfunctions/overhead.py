"""What moto's interpreter redoes at every execution, done once: none of it changes what an execution does.

- parsed programs: moto parses a definition with ANTLR at every execution (about 65 ms for our
  turn); ``ProgramCache`` parses once per definition, the program shared by executions;
- copies: the interpreter deep-copies JSON data at every state; ``JsonCopy`` copies JSON data
  directly (several times faster, the same copy);
- JSONPath: jsonpath-ng builds a new parser at every call; ``cached_jsonpath_parser``, one per path;
- memory: moto keeps every finished execution and every thread it started;
  ``keep_last_finished`` and ``prune_finished_threads`` drop the old ones.

This emulates nothing of AWS: it is the local stack's cost of using moto.
"""

from __future__ import annotations

import collections
import concurrent.futures
import copy
import functools
import threading
from typing import Any

from moto.stepfunctions.parser import utils as parser_utils
from moto.stepfunctions.parser.asl.component.component import Component
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent


class ProgramCache:
    """``AmazonStateLanguageParser.parse``, once per definition (the most recent ``size`` kept).

    A parsed program is a tree of components holding only the definition: each execution's
    state lives in its own ``Environment`` (stack, heap, frames, event history), so one
    program serves every execution of its definition, concurrently too. The one value a
    component computes lazily, its ``heap_key`` (a random id naming its slot in an
    environment's heap), is computed here before the program is shared, so two threads can
    never give one component two keys. The programs hold the task types the adapter
    installed, so the cache lives and dies with the adapter.
    """

    def __init__(self, parse: Any, size: int = 64) -> None:
        self._parse = parse
        self._size = size
        self._programs: collections.OrderedDict[str, tuple[Any, Any]] = collections.OrderedDict()
        self._parsing: dict[str, concurrent.futures.Future] = {}
        self._lock = threading.Lock()
        self.parsed = 0  # definitions actually parsed (misses), for the tests and the bench

    def parse(self, definition: str) -> tuple[Any, Any]:
        """The parsed program: from the cache, from the parse another thread is running for
        the same definition (it waits for it), or parsed here. A syntax error raises as before
        (and is not cached)."""
        with self._lock:
            cached = self._programs.get(definition)
            if cached is not None:
                self._programs.move_to_end(definition)
                return cached
            running = self._parsing.get(definition)
            if running is None:
                running = self._parsing[definition] = concurrent.futures.Future()
                mine = True
            else:
                mine = False
        if not mine:
            return running.result()
        try:
            parsed = self._parse(definition)
            _assign_heap_keys(parsed[0])
        except BaseException as error:
            with self._lock:
                del self._parsing[definition]
            running.set_exception(error)
            raise
        with self._lock:
            self.parsed += 1
            self._programs[definition] = parsed
            del self._parsing[definition]
            while len(self._programs) > self._size:
                self._programs.popitem(last=False)
        running.set_result(parsed)
        return parsed


def _assign_heap_keys(program: Any) -> None:
    """Touch ``heap_key`` on every component reachable from ``program``."""
    seen: set[int] = set()
    pending = [program]
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, (list, tuple, set, frozenset)):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, Component):
            if isinstance(item, EvalComponent):
                item.heap_key  # noqa: B018 - computed now, once, before the program is shared
            pending.extend(vars(item).values())


def _json_deepcopy(value: Any, memo: Any = None) -> Any:
    """``copy.deepcopy`` for the JSON data the interpreter copies at every state (its input,
    each path's value, each result): dicts, lists and scalars copied directly, anything
    else by ``copy.deepcopy``. The same copy, several times faster (no memo: JSON data has
    no cycles, and a value shared twice in it is copied twice, which JSON cannot tell)."""
    kind = type(value)
    if kind is dict:
        return {key: _json_deepcopy(item) for key, item in value.items()}
    if kind is list:
        return [_json_deepcopy(item) for item in value]
    if kind in _JSON_SCALARS:
        return value
    return copy.deepcopy(value, memo)


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


class JsonCopy:
    """The ``copy`` module as moto's interpreter modules see it: ``deepcopy`` is ``_json_deepcopy``."""

    deepcopy = staticmethod(_json_deepcopy)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def cached_jsonpath_parser(parse: Any) -> Any:
    """jsonpath-ng's ``parse`` builds a new PLY parser (its tables, by introspection) at every
    call; moto calls it for each path of each state at every execution. The parsed path is
    an immutable tree (``find`` and ``update_or_create`` only read it), so one per path."""
    return functools.lru_cache(maxsize=2048)(parse)


def keep_last_finished(executions: list[Any], keep: int) -> None:
    """Drop the oldest finished executions beyond ``keep`` (in place; order kept)."""
    finished = [e for e in executions if e.exec_status is not None and e.exec_status.value != "RUNNING"]
    if len(finished) <= keep:
        return
    dropped = {id(e) for e in finished[: len(finished) - keep]}
    executions[:] = [e for e in executions if id(e) not in dropped]


def prune_finished_threads() -> None:
    """Drop finished threads from moto's ``TMP_THREADS`` (only ever appended to; nothing in
    moto reads it back). A thread appended while this runs may be dropped from the list too,
    which changes nothing: the thread runs on, the list only held a reference to it."""
    threads = parser_utils.TMP_THREADS
    threads[:] = [thread for thread in list(threads) if thread.is_alive()]
