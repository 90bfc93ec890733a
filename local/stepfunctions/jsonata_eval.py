"""JSONata as Step Functions evaluates it, for moto's interpreter (which has no evaluator).

``jsonata-python`` is the evaluator (https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html);
what differs from moto's own path, each cited beside it:

- ``$states`` and the workflow's variables are bound as data, not written into the expression
  as JSON text that JSONata tokenises again (the compiled expression is reused);
- a variable holding null is null, not undefined;
- whole numbers are JavaScript's (3.0 prints 3), as JSONata on AWS holds them;
- the variable declarations moto still writes (for Step Functions' own JSONata functions)
  escape strings as JSON (https://docs.jsonata.org/simple).

Not emulated here: Step Functions' JSONata functions ($partition, $hash, $uuid, ...), which
moto's own path evaluates, and any difference between jsonata-python and the JavaScript
reference implementation AWS runs.
"""

from __future__ import annotations

import collections
import copy
import datetime
import json
import threading
from typing import Any

import jsonata
from moto.stepfunctions.parser.asl.component.intrinsic.jsonata import get_intrinsic_functions_declarations
from moto.stepfunctions.parser.asl.eval import states as eval_states
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str


def evaluate_jsonata(expression: str, bindings: dict[str, Any] | None = None) -> Any:
    """The interpreter's JSONata hook: the expression's value as plain JSON data (None when
    undefined; the interpreter tells null from undefined with ``$exists``). ``bindings``:
    variables (name without ``$`` → JSON data) the expression sees, as Step Functions binds
    ``$states`` and the workflow's variables."""
    try:
        # A compiled expression is shared; each evaluation runs on a shallow copy of it (an
        # evaluation sets the instance's timestamp), as jsonata-python's per-thread copies do.
        instance = copy.copy(_compiled_jsonata(expression))
        jsonata.Jsonata.CURRENT.jsonata = instance
        value = instance.evaluate(None, bindings or {})
        # jsonata-python answers JSONata arrays as its own list type; functions are not JSON.
        return json.loads(json.dumps(value))
    except Exception as error:
        failure = moto_jsonata.JSONataException("UNKNOWN", str(error))
        failure.args = (f"{type(error).__name__}: {error}",)  # so the execution's cause says what failed
        raise failure from error


JSONATA_NULL = jsonata.utils.Utils.NULL_VALUE
"""jsonata-python's JSON null; a binding of None is undefined to it."""

_JSONATA_CACHE_SIZE = 512
_jsonata_cache: collections.OrderedDict[str, Any] = collections.OrderedDict()
_jsonata_cache_lock = threading.Lock()


def _compiled_jsonata(expression: str) -> Any:
    with _jsonata_cache_lock:
        compiled = _jsonata_cache.get(expression)
        if compiled is not None:
            _jsonata_cache.move_to_end(expression)
            return compiled
    compiled = jsonata.Jsonata(expression)  # a syntax error raises here, every time
    with _jsonata_cache_lock:
        _jsonata_cache[expression] = compiled
        while len(_jsonata_cache) > _JSONATA_CACHE_SIZE:
            _jsonata_cache.popitem(last=False)
    return compiled


def jsonata_bindings(env: Any, references: set[str]) -> dict[str, Any]:
    """What moto would write into the expression as ``$name:=<JSON>;`` declarations, as
    variables instead: ``$states`` (the parts of it the expression names, as moto chooses
    them) and the workflow's variables, outer scope first. Encoded and decoded with moto's own
    JSON encoder (datetimes become ISO strings, as in moto's declarations), so the expression
    works on a copy, never on the execution's own data."""
    data = env.states._states_data
    if not references or eval_states._STATES_PREFIX in references:
        states = data
    else:
        candidates = {
            "input": eval_states._STATES_INPUT_PREFIX,
            "context": eval_states._STATES_CONTEXT_PREFIX,
            "result": eval_states._STATES_RESULT_PREFIX,
            "errorOutput": eval_states._STATES_ERROR_OUTPUT_PREFIX,
        }
        states = {}
        for reference in references:
            for key, prefix in list(candidates.items()):
                if reference.startswith(prefix):
                    states[key] = data[key]
                    del candidates[key]
                    break
    store = env.variable_store
    variables = {**store._outer_scope, **store._inner_scope}
    bindings = json.loads(to_json_str({**variables, "states": states}), parse_float=_javascript_number)
    # A variable holding null is a value in JSONata ($exists is true, `= null` holds);
    # jsonata-python reads a binding of None as undefined, and its own null as null.
    return {name: JSONATA_NULL if value is None else value for name, value in bindings.items()}


def _javascript_number(text: str) -> float | int:
    """A JSON number as JSONata on AWS holds it: a JavaScript number has no integral and
    float kinds, so JSON's ``3.0`` is ``3`` and prints as ``3``
    (https://tc39.es/ecma262/#sec-numeric-types-number-tostring); Python's json reads a
    float that jsonata-python then prints as ``3.0``. Whole values below 1e21, where
    JavaScript turns to exponent notation, become ints."""
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 1e21 else value


def string_jsonata_eval_body(original: Any) -> Any:
    """``StringJSONata._eval_body`` (a ``{% ... %}`` string), with ``$states`` and the
    variables bound as data instead of written into the expression as JSON text that
    JSONata then tokenises again: the compiled expression is reused, whatever the data.

    moto's own path still runs where it decides more than the value: an expression that uses
    Step Functions' JSONata functions ($partition, $hash, $uuid, ...: declared by moto as
    JSONata code), and a result that is null or undefined (moto tells them apart and fails
    the state on undefined). A string result needs no check: its JSONata type is a string."""

    def eval_body(component: Any, env: Any) -> None:
        references = moto_jsonata.extract_jsonata_variable_references(component.expression)
        if get_intrinsic_functions_declarations(variable_references=references):
            original(component, env)
            return
        result = evaluate_jsonata(component.expression, jsonata_bindings(env, references))
        if result is None:
            original(component, env)
            return
        env.stack.append(result)

    return eval_body


def encode_jsonata_variable_declarations(bindings: dict[str, Any]) -> str:
    """``$name:=<value>;`` for each binding, every value a JSON literal (moto quotes strings
    without escaping them, so a variable holding a quote or a newline breaks every expression).
    JSONata string literals take JSON's escapes: https://docs.jsonata.org/simple"""
    # Characters outside the BMP written as themselves, not as an escaped surrogate pair, which
    # jsonata-python reads as two characters: the declared string is then the one bound as
    # data (json.dumps still escapes quotes, backslashes and control characters).
    return "".join(
        f"{name}:={json.dumps(value, separators=(',', ':'), ensure_ascii=False, default=json_default)};"
        for name, value in bindings.items()
    )


def json_default(value: Any) -> str:
    """What moto's declarations write for what JSON has no type for (its to_json_str)."""
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    return str(value)
