"""Reading the stack config: every key of the model read once, validated, and every problem
(values and unknown keys alike) in one :class:`StackConfigError`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ValidationError

from components.config.base import StackConfigError
from components.config.errors import error_lines, error_message
from components.config.keys import check_config_keys
from components.config.stack import StackConfig


def parse_stack_config(raw: dict[str, Any], key_errors: Iterable[str] = ()) -> StackConfig:
    """Validate a dict of ``agent-infra:*`` values (keys without the namespace).

    ``key_errors`` (from :func:`check_config_keys`) go into the same message as the values'
    problems, so one run names everything wrong.
    """
    lines = list(key_errors)
    try:
        config = StackConfig.model_validate(raw)
    except ValidationError as error:
        lines.extend(error_lines(error))
    if lines:
        raise StackConfigError(error_message(lines)) from None
    return config


def load_stack_config(read: Callable[[str], Any], keys: Iterable[str] | None = None) -> StackConfig:
    """Read every key of the model with ``read`` (e.g. ``pulumi.Config().get_object``) and validate.

    ``keys``, every key of the stack in every namespace, makes an unknown ``agent-infra:*`` key
    an error too (see :func:`check_config_keys`; its warnings are the caller's to log).
    """
    raw = {}
    for name, info in StackConfig.model_fields.items():
        key = info.alias or name
        value = read(key)
        if value is not None:
            raw[key] = value
    key_errors = check_config_keys(keys).errors if keys is not None else ()
    return parse_stack_config(raw, key_errors)
