"""A validation error as the stack's owner reads it: one line per problem, naming the key
(``agent-infra:api.auth.issuer``), the value (secrets redacted) and what is allowed, and for
an unknown key the closest key allowed."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from components.config.base import NAMESPACE, keys_of, nested_model
from components.config.stack import StackConfig


def _key_path(loc: tuple) -> str:
    path = f"{NAMESPACE}:"
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("function-after", "function-before"):  # pydantic wrapper locations
            continue
        else:
            path += part if path.endswith(":") else f".{part}"
    return path


_SECRET_FIELD = "apiKey"  # noqa: S105 - the name of the field, not a secret


def _redact(value: Any) -> Any:
    """The value as shown in an error: secrets inside it replaced, at any depth."""
    if isinstance(value, dict):
        return {k: "[secret]" if k == _SECRET_FIELD else _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The model whose keys are allowed at ``loc`` (a pydantic error location), if any."""
    model: type[BaseModel] | None = StackConfig
    for part in loc:
        if isinstance(part, int):
            continue  # an element of a list keeps the list's model
        fields = {info.alias or name: info for name, info in model.model_fields.items()}
        if part not in fields:
            return None
        model = nested_model(fields[part].annotation)
        if model is None:
            return None
    return model


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(name, list(candidates), n=1)
    return found[0] if found else None


def _unknown_key(loc: tuple) -> str:
    """The message for a key no model has: the closest allowed key, or the keys allowed."""
    parent = _model_at(loc[:-1])
    allowed = keys_of(parent) if parent is not None else []
    guess = did_you_mean(str(loc[-1]), allowed)
    if guess is not None:
        return f"unknown key; did you mean {_key_path((*loc[:-1], guess))}?"
    where = f"the keys of {_key_path(loc[:-1])} are" if loc[:-1] else f"the {NAMESPACE} keys are"
    if allowed:
        return f"unknown key; {where} {', '.join(allowed)} (docs/configuration.md)"
    return "unknown key; see the config reference in docs/configuration.md for the keys allowed"


def _describe(error: dict, loc: tuple) -> str:
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if error["type"] == "extra_forbidden":
        message = _unknown_key(loc)
    elif error["type"] == "missing":
        message = "is required"
    return message


def error_lines(error: ValidationError) -> list[str]:
    lines = []
    for problem in error.errors():
        loc = tuple(p for p in problem["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = _key_path(loc)
        if problem["type"] == "missing":
            lines.append(f"{key}: {_describe(problem, loc)}")
            continue
        value = problem.get("input")
        shown = "'[secret]'" if key.endswith(f".{_SECRET_FIELD}") else repr(_redact(value))
        lines.append(f"{key} = {shown}: {_describe(problem, loc)}")
    return lines


def error_message(lines: Iterable[str]) -> str:
    return "invalid stack config:\n  " + "\n  ".join(lines)


def format_errors(error: ValidationError) -> str:
    return error_message(error_lines(error))
