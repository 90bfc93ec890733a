"""Handler settings from environment variables, validated once at cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

import msgspec

T = TypeVar("T")


class SettingsError(RuntimeError):
    """An environment variable is missing or malformed: the function is misconfigured."""


def load_settings(model: type[T], environ: Mapping[str, str] | None = None) -> T:
    """Build ``model`` (a msgspec Struct whose field names are the variable names) from the
    environment. Strings are converted to the field types (``int``, ``bool``, JSON lists
    for ``list`` fields); an error names the variable."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for field in msgspec.structs.fields(model):
        if field.encode_name in env:
            value: object = env[field.encode_name]
            if isinstance(value, str) and value[:1] in "[{":
                try:
                    value = msgspec.json.decode(value)
                except msgspec.DecodeError as error:
                    raise SettingsError(f"{field.encode_name} is not valid JSON: {error}") from None
            raw[field.encode_name] = value
    try:
        return msgspec.convert(raw, model, strict=False)
    except msgspec.ValidationError as error:
        raise SettingsError(f"bad function configuration: {error}") from None
