"""What every regional component is told the same way: where it deploys, and the model
as that region calls it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi


@dataclass(frozen=True, kw_only=True)
class RegionContext:
    """Where a regional component deploys: the same four values for every component of
    one region (:class:`~components.region.AgentRegion` hands its own to each child)."""

    region: str
    stack: str
    partition: str
    account_id: pulumi.Input[str]
    """The stack's AWS account (``aws.get_caller_identity``), an Output until deployed."""


@dataclass(frozen=True, kw_only=True)
class RegionLlm:
    """The model as one region calls it: ``llm`` of the stack config with this region's
    endpoints put nearest first, the API key as a secret Output, and the time a call may
    take."""

    provider: str
    model: str
    endpoints: Sequence[str]
    """This region's endpoints, nearest first (regions for bedrock, URLs for openai)."""
    timeout_seconds: float
    """How long one model call may take (``compute.llmTimeoutSeconds``)."""
    history_tokens: int = 8_000
    """Most tokens of earlier turns a model call sends (``llm.historyTokens``)."""
    prompt_caching: bool = True
    """Mark the prompt's stable prefix for the model's cache (``llm.promptCaching``)."""
    api_key: pulumi.Input[str] | None
    """Secret API key (openai; ``None`` for bedrock). The functions read it from Secrets
    Manager and the HTTP Task from an EventBridge connection, never from the environment."""
