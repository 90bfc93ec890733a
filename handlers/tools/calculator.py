"""calculator: a pure tool. Safe arithmetic over an AST walk, never ``eval``.

The expression comes from the model, so it is hostile input, and both its values and the
work it causes are bounded:

* every value, literal or intermediate or final, is an integer of at most
  :data:`MAX_INT_BITS` bits or a finite float of magnitude at most :data:`MAX_MAGNITUDE`
  (JSON has no NaN or Infinity, and the answer goes back as JSON);
* an operation runs only when its result's size, predicted from its operands' bit lengths,
  is at most twice that bound, so no step builds a huge number just to refuse it
  (``(10**300) ** 1000``); ``round``'s digits are bounded the same way, since
  ``round(1, -10**9)`` builds ``10**(10**9)``;
* the expression is at most :data:`MAX_EXPRESSION` characters and :data:`MAX_DEPTH` levels
  deep.

Whatever the expression, :func:`evaluate` returns such a number or raises
:class:`ToolInputError` with a message for the model; no Python error escapes.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Annotated, NamedTuple

import msgspec

from handlers.shared.tooling import ToolContext, ToolDefinition, ToolInputError

MAX_EXPRESSION = 500
MAX_DEPTH = 250  # a flat sum of 250 terms fills MAX_EXPRESSION; the evaluator recurses once per level
MAX_EXPONENT = 1_000
MAX_MAGNITUDE = 1e300
MAX_INT_BITS = 1_000  # about 301 decimal digits
# Integers within MAX_INT_BITS have at most 302 digits and floats reach 1e-323, so rounding
# to more digits either way changes nothing a caller could see.
MAX_ROUND_DIGITS = 400

Number = int | float


class _Operator(NamedTuple):
    """A binary operator: how it is written, what it does, and how large its result can be."""

    symbol: str
    apply: Callable[[Number, Number], Number]
    # The most bits an integer result can have, given the two integer operands' values
    # (a bound computed from bit lengths, never by doing the operation).
    result_bits: Callable[[int, int], int]


def _sum_bits(left: int, right: int) -> int:
    return max(left.bit_length(), right.bit_length()) + 1


def _product_bits(left: int, right: int) -> int:
    return left.bit_length() + right.bit_length()


def _quotient_bits(left: int, right: int) -> int:
    # |a // b| <= |a| and |a % b| < |b|.
    return max(left.bit_length(), right.bit_length())


def _power_bits(base: int, exponent: int) -> int:
    # A negative exponent gives a float; a positive one at most bits(base) * exponent bits.
    return base.bit_length() * exponent if exponent > 0 else 1


_OPERATORS: dict[type[ast.operator], _Operator] = {
    ast.Add: _Operator("+", operator.add, _sum_bits),
    ast.Sub: _Operator("-", operator.sub, _sum_bits),
    ast.Mult: _Operator("*", operator.mul, _product_bits),
    ast.Div: _Operator("/", operator.truediv, lambda left, right: 1),  # always a float
    ast.FloorDiv: _Operator("//", operator.floordiv, _quotient_bits),
    ast.Mod: _Operator("%", operator.mod, _quotient_bits),
    ast.Pow: _Operator("**", operator.pow, _power_bits),
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class _Function(NamedTuple):
    """A function the expression may call, with how many arguments it takes."""

    apply: Callable[..., Number]
    min_args: int
    max_args: int
    usage: str  # told to the model when the count is wrong


_ONE = "one number, {name}(x)"
_FUNCTIONS: dict[str, _Function] = {
    "abs": _Function(abs, 1, 1, _ONE),
    "round": _Function(round, 1, 2, "a number and optional digits, round(x) or round(x, digits)"),
    "min": _Function(min, 2, 8, "2 to 8 numbers, e.g. min(1, 2)"),
    "max": _Function(max, 2, 8, "2 to 8 numbers, e.g. max(1, 2)"),
    "sqrt": _Function(math.sqrt, 1, 1, _ONE),
    "log": _Function(math.log, 1, 2, "a number and an optional base, log(x) or log(x, base)"),
    "exp": _Function(math.exp, 1, 1, _ONE),
    "sin": _Function(math.sin, 1, 1, _ONE),
    "cos": _Function(math.cos, 1, 1, _ONE),
    "tan": _Function(math.tan, 1, 1, _ONE),
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_ARITHMETIC_ERRORS = (ArithmeticError, ValueError, TypeError)


class CalculatorInput(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    expression: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=MAX_EXPRESSION,
            description="Arithmetic expression, e.g. (2 + 3) * 4 ** 2 / sqrt(16)",
        ),
    ]


def _number(value: object, what: str) -> Number:
    """``value`` if the calculator may hold it; otherwise a refusal saying what is wrong with ``what``."""
    if type(value) is int:
        if value.bit_length() > MAX_INT_BITS:
            raise ToolInputError(f"{what} is too large: integers are limited to {MAX_INT_BITS} bits")
        return value
    if type(value) is float:
        if math.isnan(value):
            raise ToolInputError(f"{what} is not a number")
        if math.isinf(value) or abs(value) > MAX_MAGNITUDE:
            raise ToolInputError(f"{what} is too large: numbers are limited to ±{MAX_MAGNITUDE:g}")
        return value
    if isinstance(value, complex):
        raise ToolInputError(f"{what} is not a real number")
    raise ToolInputError(f"{what} is not a number")


def _binary(node: ast.BinOp, left: Number, right: Number) -> Number:
    op = _OPERATORS[type(node.op)]
    if isinstance(node.op, ast.Pow):
        if abs(right) > MAX_EXPONENT:
            raise ToolInputError(f"exponents are limited to ±{MAX_EXPONENT}")
        if left < 0 and isinstance(right, float) and not right.is_integer():
            raise ToolInputError("**: a negative number to a fractional power is not a real number")
    if type(left) is int and type(right) is int and op.result_bits(left, right) > 2 * MAX_INT_BITS:
        raise ToolInputError(f"the result of {op.symbol} is too large: integers are limited to {MAX_INT_BITS} bits")
    try:
        result = op.apply(left, right)
    except ZeroDivisionError:
        raise ToolInputError("division by zero") from None
    except OverflowError:
        raise ToolInputError(f"the result of {op.symbol} is too large") from None
    except (ValueError, TypeError) as error:
        # Not expected for two real numbers; still the expression's fault, never a crash.
        raise ToolInputError(f"{op.symbol}: {error}") from None
    return _number(result, f"the result of {op.symbol}")


def _check_arguments(name: str, args: list[Number]) -> None:
    """Refuse, before calling, what a function cannot do with these arguments."""
    if name == "round" and len(args) == 2:
        digits = args[1]
        if type(digits) is not int:
            raise ToolInputError(f"round: the number of digits must be a whole number, not {digits!r}")
        if abs(digits) > MAX_ROUND_DIGITS:
            raise ToolInputError(f"round: the number of digits is limited to ±{MAX_ROUND_DIGITS}")
    elif name == "sqrt" and args[0] < 0:
        raise ToolInputError("sqrt: the number must not be negative")
    elif name == "log":
        if args[0] <= 0:
            raise ToolInputError("log: the number must be positive")
        if len(args) == 2 and (args[1] <= 0 or args[1] == 1):
            raise ToolInputError("log: the base must be positive and not 1")


def _call(name: str, arguments: list[ast.expr], depth: int) -> Number:
    function = _FUNCTIONS[name]
    # The count is checked before any argument is evaluated: no work for a call that cannot run.
    if not function.min_args <= len(arguments) <= function.max_args:
        usage = function.usage.format(name=name)
        raise ToolInputError(f"{name} takes {usage}; got {len(arguments)}")
    args = [_evaluate(argument, depth + 1) for argument in arguments]
    _check_arguments(name, args)
    try:
        result = function.apply(*args)
    except OverflowError:
        raise ToolInputError(f"the result of {name} is too large") from None
    except _ARITHMETIC_ERRORS as error:
        # Anything the checks above did not foresee is still the expression's fault.
        raise ToolInputError(f"{name}: {error}") from None
    return _number(result, f"the result of {name}")


def _evaluate(node: ast.AST, depth: int = 0) -> Number:
    if depth > MAX_DEPTH:
        raise ToolInputError(f"the expression is nested too deeply (at most {MAX_DEPTH} levels)")
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, depth + 1)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        # Literals are checked like results: "1" + 400 zeros + ".0" parses as inf.
        return _number(node.value, f"the number at column {node.col_offset + 1}")
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand, depth + 1))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _binary(node, _evaluate(node.left, depth + 1), _evaluate(node.right, depth + 1))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
        and not any(isinstance(arg, ast.Starred) for arg in node.args)
    ):
        return _call(node.func.id, node.args, depth)
    raise ToolInputError(
        f"unsupported element {type(node).__name__!s} in the expression; use numbers, + - * / // % **, parentheses, pi, e and {', '.join(sorted(_FUNCTIONS))}"
    )


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression: a finite int or float that JSON can carry.

    Raises :class:`ToolInputError`, with what is wrong, for anything else.
    """
    if len(expression) > MAX_EXPRESSION:
        raise ToolInputError(f"the expression is longer than the limit: at most {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(expression, mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        raise ToolInputError(f"not an arithmetic expression: {expression!r}") from None
    return _evaluate(tree)


def run(ctx: ToolContext, request: CalculatorInput) -> dict:
    return {"expression": request.expression, "result": evaluate(request.expression)}


TOOL = ToolDefinition(
    name="calculator",
    description="Evaluate an arithmetic expression exactly. Use it for any calculation.",
    input_type=CalculatorInput,
    run=run,
    pure=True,  # nothing to record: a redelivery computes the same answer
    # Its results could be shared with every user (pure), but a look-up costs more than the
    # answer: an expression evaluates in 20-60 µs, a GetItem is a round trip of milliseconds,
    # and a cached calculator turn read 3 items instead of 2 and wrote 0.1 more (replicated
    # to every region): +$1.44 per 1M tool turns in prod (`make cost`, `python -m bench.dax`).
    # A pure tool whose work is slow declares ``cache=ResultCache(max_age_seconds=...)``.
)
handler = TOOL.lambda_handler
