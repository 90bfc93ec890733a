"""The resources the program creates, as ``make preview`` gets them: the real
``__main__.py`` under the Pulumi mocks, no AWS account, no Pulumi CLI."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from cost.facts import StackFacts, facts_from_resources


def stack_facts(stack: str, config: Mapping[str, Any] | None = None) -> StackFacts:
    """Run the program for ``stack`` (its ``Pulumi.<stack>.yaml``, or ``config``) under the
    mocks and read the facts the cost depends on from what it created."""
    from local.pulumi_mocks import run_program, stack_config

    config = dict(config) if config is not None else stack_config(stack)
    logging.getLogger().setLevel(logging.ERROR)  # the program's warnings are make preview's business
    run = run_program(config, stack)
    return facts_from_resources(stack, run.resources, config)
