"""The tools a stack's config says need a human's approval, as the deployed agent step gets
them (``requiresApproval`` in the specs built into its archive) and the local stack passes them."""

from __future__ import annotations

from components.config import NAMESPACE, parse_stack_config
from local.pulumi_mocks import stack_config


def approval_tools(stack: str = "dev") -> set[str]:
    prefix = f"{NAMESPACE}:"
    raw = {key.removeprefix(prefix): value for key, value in stack_config(stack).items() if key.startswith(prefix)}
    return {tool.name for tool in parse_stack_config(raw).tools if tool.requires_approval}
