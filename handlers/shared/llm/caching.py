"""Prompt caching: which models cache a prompt prefix, and where a request marks it.

Bedrock's Converse caches the prefix of a request up to each ``cachePoint`` block, in the
order ``tools`` → ``system`` → ``messages``; a later request that starts with the same
prefix reads it from the cache at a tenth of the input price (Claude; a quarter for Nova),
and the tokens written to it are billed at 1.25x. At most 4 checkpoints a request, and a
checkpoint before the model's minimum number of tokens (counted over everything before it)
caches nothing, though the request still succeeds
(https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html). The TTL is 5
minutes, reset by each hit (same page). That the minimum counts the whole prefix before a
checkpoint is the page's "cumulative tokens across all three sections" and Anthropic's own
rule; an example on the same page ("your first cache checkpoint can be defined after 1,024
tokens and your second cache checkpoint can be defined after 2,048 tokens") can be read as
a minimum between checkpoints, under which the checkpoint at a request's end would often
cache nothing. The first deployment's ``llm usage`` lines settle it.

Where this program puts them (``cache_points``), so each model call reads what the one
before it wrote:

1. after the system prompt: the tools and the system prompt, the same for every call;
2. at the end of the previous model call's request: the message just before the last
   assistant message, whose prefix that call wrote (read now);
3. at the end of this request: written now, read by the next call (the turn's next step,
   or the session's next turn).

The request must stay byte-stable for the prefix to match: messages are rendered the same
way at every step (``handlers.shared.turns``: documents with sorted keys, tool outputs cut
the same way), and the earlier turns sent only move at long intervals (the history budget).

OpenAI-compatible APIs cache a stable prefix of 1,024 tokens or more by themselves and
report it as ``prompt_tokens_details.cached_tokens``
(https://developers.openai.com/api/docs/guides/prompt-caching): no marker to add.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

MAX_CACHE_POINTS = 4
CACHE_POINT = {"cachePoint": {"type": "default"}}
CHARS_PER_TOKEN = 4
"""Tokens are estimated as characters / 4 (English prose; JSON and code run a little
denser). Only whether a checkpoint passes the model's minimum depends on it: a checkpoint
placed too early caches nothing and costs nothing."""

# Cross-region inference profiles prefix the model id with their geography
# (https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html).
_ROUTE_PREFIXES = ("global.", "us.", "eu.", "apac.", "jp.", "au.", "ca.", "us-gov.")


@dataclass(frozen=True)
class CacheSupport:
    """A model's prompt caching: the least tokens a checkpoint's prefix must hold, and the
    request fields a checkpoint may go in."""

    min_tokens: int
    fields: frozenset[str]


_CLAUDE = frozenset({"tools", "system", "messages"})
_NOVA = frozenset({"system", "messages"})

# The "Supported models, Regions, and limits" table of
# https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html (minimum tokens
# per checkpoint; every model allows 4 checkpoints). Claude Sonnet 4.5's minimum reads 1,024
# in most versions of that page and 4,096 in one: 1,024 is Anthropic's own figure.
# Models not listed get no checkpoints.
MODELS: dict[str, CacheSupport] = {
    "anthropic.claude-3-7-sonnet-20250219-v1:0": CacheSupport(1_024, _CLAUDE),
    "anthropic.claude-3-5-haiku-20241022-v1:0": CacheSupport(2_048, _CLAUDE),
    "anthropic.claude-sonnet-4-20250514-v1:0": CacheSupport(1_024, _CLAUDE),
    "anthropic.claude-sonnet-4-5-20250929-v1:0": CacheSupport(1_024, _CLAUDE),
    "anthropic.claude-haiku-4-5-20251001-v1:0": CacheSupport(4_096, _CLAUDE),
    "amazon.nova-micro-v1:0": CacheSupport(1_000, _NOVA),
    "amazon.nova-lite-v1:0": CacheSupport(1_000, _NOVA),
    "amazon.nova-pro-v1:0": CacheSupport(1_000, _NOVA),
    "amazon.nova-premier-v1:0": CacheSupport(1_000, _NOVA),
}


def base_model(model_id: str) -> str:
    """The foundation model of a model or cross-region inference profile id."""
    for prefix in _ROUTE_PREFIXES:
        if model_id.startswith(prefix):
            return model_id[len(prefix) :]
    return model_id


def cache_support(model_id: str) -> CacheSupport | None:
    return MODELS.get(base_model(model_id))


def estimate_tokens(value: Any) -> int:
    """Tokens of a request part, estimated from its JSON (see ``CHARS_PER_TOKEN``)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def cache_points(request: dict[str, Any], support: CacheSupport | None) -> dict[str, Any]:
    """``request`` (Converse, camelCase) with checkpoints where ``support`` allows them and
    the prefix before each reaches the model's minimum; unchanged for a model without
    caching. The places are the module docstring's 1-3, in that order, at most
    ``MAX_CACHE_POINTS``."""
    if support is None:
        return request
    tools = request.get("toolConfig", {}).get("tools", [])
    system = list(request.get("system", []))
    messages = [{**m, "content": list(m["content"])} for m in request.get("messages", [])]
    tokens = estimate_tokens(tools) + estimate_tokens(system)
    placed = 0
    if system and "system" in support.fields and tokens >= support.min_tokens:
        system.append(dict(CACHE_POINT))
        placed += 1
    if "messages" in support.fields and messages:
        assistants = [n for n, m in enumerate(messages) if m["role"] == "assistant"]
        marks = sorted({assistants[-1] - 1, len(messages) - 1} if assistants else {len(messages) - 1})
        ends = []
        for message in messages:
            tokens += estimate_tokens(message["content"])
            ends.append(tokens)
        for n in marks:
            if n >= 0 and ends[n] >= support.min_tokens and placed < MAX_CACHE_POINTS:
                messages[n]["content"].append(dict(CACHE_POINT))
                placed += 1
    out = {**request, "messages": messages}
    if system:
        out["system"] = system
    return out
