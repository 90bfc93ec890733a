"""Every key of a stack, in every namespace, against the keys the program reads: an unknown
``agent-infra:*`` key is an error, a key of another namespace a warning."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from components.config.base import NAMESPACE, keys_of
from components.config.errors import did_you_mean
from components.config.stack import StackConfig

# Namespaces whose keys the Pulumi engine reads itself (pulumi:disable-default-providers,
# pulumi:tags, ...): never the program's business.
ENGINE_NAMESPACES = frozenset({"pulumi"})

# A namespace this close to ours (edits, case aside) is taken for a typo of it.
_NAMESPACE_TYPO_DISTANCE = 2


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, with a swap of two neighbouring characters counting as one edit."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, previous2[j - 2] + 1)
            current.append(cost)
        previous2, previous = previous, current
    return previous[-1]


@dataclass(frozen=True)
class ConfigKeyCheck:
    """What :func:`check_config_keys` found: errors stop the program, warnings are logged."""

    errors: tuple[str, ...]
    warnings: tuple[str, ...]


def _other_namespace_warning(key: str, namespace: str, name: str) -> str:
    ignored = f"{key}: ignored: this program reads no {namespace}:* config"
    if namespace == "aws":
        ignored = f"{key}: ignored: this program's AWS provider is explicit and reads no aws:* stack config"
        if name == "region":
            return f"{ignored}; the regions come from {NAMESPACE}:regions (the first is the home region)"
        if name in ("profile", "accessKey", "secretKey", "token", "sharedCredentialsFiles"):
            return f"{ignored}; credentials come from the environment (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...)"
        return ignored
    if _edit_distance(namespace.lower(), NAMESPACE) <= _NAMESPACE_TYPO_DISTANCE:
        guess = did_you_mean(name, keys_of(StackConfig)) or name
        return f"{ignored}; did you mean {NAMESPACE}:{guess}?"
    return ignored


def check_config_keys(keys: Iterable[str]) -> ConfigKeyCheck:
    """Every key of a stack (``namespace:name``, all namespaces) checked against what the program reads.

    An unknown ``agent-infra:*`` key is an error (with the closest key as a suggestion): a
    misspelled key would otherwise leave its setting at the default without a word. A key of
    another namespace is a warning, since other tools may share the stack file: the engine's
    own ``pulumi:*`` keys are fine, a namespace a typo away from ``agent-infra`` suggests the key
    meant, ``aws:*`` says that the program's explicit provider never reads it.
    """
    known = keys_of(StackConfig)
    errors, warnings = [], []
    for key in sorted(set(keys)):
        namespace, colon, name = key.partition(":")
        if not colon:
            warnings.append(f"{key}: ignored: a key without a namespace; this program reads {NAMESPACE}:* keys")
        elif namespace == NAMESPACE:
            if name in known:
                continue
            head = re.split(r"[.\[]", name, maxsplit=1)[0]
            if head != name and head in known:
                errors.append(
                    f"{key}: unknown key; a key path is not a key: nest the value under {NAMESPACE}:{head}"
                    f" (`pulumi config set --path '{key}' <value>` does)"
                )
            else:
                guess = did_you_mean(name, known)
                errors.append(
                    f"{key}: unknown key; did you mean {NAMESPACE}:{guess}?"
                    if guess
                    else f"{key}: unknown key; the {NAMESPACE} keys are {', '.join(known)} (docs/configuration.md)"
                )
        elif namespace not in ENGINE_NAMESPACES:
            warnings.append(_other_namespace_warning(key, namespace, name))
    return ConfigKeyCheck(errors=tuple(errors), warnings=tuple(warnings))
