"""calculator: a pure tool. Safe arithmetic over an AST walk, never ``eval``."""

from __future__ import annotations

import ast
import math
import operator
from typing import Annotated

import msgspec

from handlers.shared.tooling import ToolContext, ToolDefinition, ToolInputError

MAX_EXPRESSION = 500
MAX_EXPONENT = 1_000
MAX_MAGNITUDE = 1e300

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "log": math.log,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}


class CalculatorInput(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    expression: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=MAX_EXPRESSION,
            description="Arithmetic expression, e.g. (2 + 3) * 4 ** 2 / sqrt(16)",
        ),
    ]


def _check(value: float | int) -> float | int:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value) or abs(value) > MAX_MAGNITUDE):
        raise ToolInputError("the result is too large or not a number")
    if isinstance(value, int) and value.bit_length() > 1_000:
        raise ToolInputError("the result is too large")
    return value


def _evaluate(node: ast.AST) -> float | int:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check(_UNARY[type(node.op)](_evaluate(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolInputError(f"exponents are limited to ±{MAX_EXPONENT}")
        try:
            return _check(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise ToolInputError("division by zero") from None
        except OverflowError:
            raise ToolInputError("the result is too large") from None
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
        and 1 <= len(node.args) <= 8
    ):
        try:
            return _check(_FUNCTIONS[node.func.id](*(_evaluate(a) for a in node.args)))
        except (ValueError, OverflowError) as error:
            raise ToolInputError(f"{node.func.id}: {error}") from None
    raise ToolInputError(
        f"unsupported element {type(node).__name__!s} in the expression; use numbers, + - * / // % **, parentheses, pi, e and {', '.join(sorted(_FUNCTIONS))}"
    )


def evaluate(expression: str) -> float | int:
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        raise ToolInputError(f"not an arithmetic expression: {expression!r}") from None
    return _evaluate(tree)


def run(ctx: ToolContext, request: CalculatorInput) -> dict:
    return {"expression": request.expression, "result": evaluate(request.expression)}


TOOL = ToolDefinition(
    name="calculator",
    description="Evaluate an arithmetic expression exactly. Use it for any calculation.",
    input_type=CalculatorInput,
    run=run,
)
handler = TOOL.lambda_handler
