"""Provider-neutral messages and replies, and each provider's request and reply format.

Pure data: no I/O. ``bedrock_request`` and ``openai_request`` build what the state
machines send the model (Converse through the AWS SDK integration, chat completions
through the HTTP Task) and what the streaming transports send; ``parse_*`` read the answer
back into an :class:`LlmReply`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import msgspec

from handlers.shared.llm.caching import CacheSupport, cache_points


class ToolSpec(msgspec.Struct, frozen=True):
    name: str
    description: str
    input_schema: dict[str, Any]


class ToolCall(msgspec.Struct, frozen=True):
    tool_use_id: str
    name: str
    input: dict[str, Any]


class ToolResult(msgspec.Struct, frozen=True):
    tool_use_id: str
    name: str
    output: Any
    is_error: bool = False


class LlmMessage(msgspec.Struct, frozen=True):
    """Provider-neutral message: user text, an assistant reply (text and/or tool calls), or
    the results of tool calls (sent to the model as the user's turn)."""

    role: str  # "user" or "assistant"
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()


class LlmReply(msgspec.Struct, frozen=True):
    text: str
    tool_calls: tuple[ToolCall, ...]
    stop_reason: str
    input_tokens: int
    """Input tokens billed at the full price: neither read from nor written to the cache."""
    output_tokens: int
    endpoint: str = ""
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


def usage_of(reply: LlmReply) -> dict[str, int]:
    """A reply's tokens as the turn records and returns them (Converse's names)."""
    return {
        "inputTokens": reply.input_tokens,
        "outputTokens": reply.output_tokens,
        "cacheReadInputTokens": reply.cache_read_tokens,
        "cacheWriteInputTokens": reply.cache_write_tokens,
    }


def reply_to_dict(reply: LlmReply) -> dict[str, Any]:
    """A reply as plain data (a Lambda's result in the state machine)."""
    return msgspec.to_builtins(reply)


def reply_from_dict(value: dict[str, Any]) -> LlmReply:
    return msgspec.convert(value, LlmReply)


# --- Bedrock Converse ---------------------------------------------------------------------


def canonical(value: Any) -> Any:
    """A JSON document with its keys sorted at every level: a tool's input or output reads
    back from the table in whatever order DynamoDB keeps a map's keys, and a prompt cache
    matches bytes, so every rendering of a message must be the same."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def _bedrock_content(message: LlmMessage) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    if message.text:
        content.append({"text": message.text})
    for call in message.tool_calls:
        content.append({"toolUse": {"toolUseId": call.tool_use_id, "name": call.name, "input": canonical(call.input)}})
    for result in message.tool_results:
        document = canonical(result.output if isinstance(result.output, dict) else {"result": result.output})
        content.append(
            {
                "toolResult": {
                    "toolUseId": result.tool_use_id,
                    "content": [{"json": document}],
                    "status": "error" if result.is_error else "success",
                }
            }
        )
    return content


def bedrock_request(
    model: str,
    system: str,
    messages: Sequence[LlmMessage],
    tools: Sequence[ToolSpec],
    max_tokens: int,
    cache: CacheSupport | None = None,
) -> dict[str, Any]:
    """Converse arguments. Consecutive messages of one role are merged: Converse wants
    user and assistant to alternate. With ``cache`` (the model caches prompts), cache
    checkpoints go where ``handlers.shared.llm.caching`` places them."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        content = _bedrock_content(message)
        if merged and merged[-1]["role"] == message.role:
            merged[-1]["content"].extend(content)
        else:
            merged.append({"role": message.role, "content": content})
    request: dict[str, Any] = {
        "modelId": model,
        "messages": merged,
        "inferenceConfig": {"maxTokens": max_tokens},
    }
    if system:
        request["system"] = [{"text": system}]
    if tools:
        request["toolConfig"] = {
            "tools": [
                {"toolSpec": {"name": t.name, "description": t.description, "inputSchema": {"json": t.input_schema}}}
                for t in tools
            ]
        }
    return cache_points(request, cache)


def _int(value: Any) -> int:
    """A token count as a provider reports it: anything but a finite number of 0 or more
    (a broken or hostile server's NaN, -5, "12") counts as 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return 0
    return int(value)


def parse_bedrock_reply(response: dict[str, Any], endpoint: str) -> LlmReply:
    content = response.get("output", {}).get("message", {}).get("content", [])
    text = "".join(block["text"] for block in content if "text" in block)
    calls = tuple(
        ToolCall(block["toolUse"]["toolUseId"], block["toolUse"]["name"], block["toolUse"].get("input") or {})
        for block in content
        if "toolUse" in block
    )
    return LlmReply(
        text=text,
        tool_calls=calls,
        stop_reason=response.get("stopReason", ""),
        endpoint=endpoint,
        **bedrock_usage(response.get("usage") or {}),
    )


def bedrock_usage(usage: dict[str, Any]) -> dict[str, int]:
    """Converse's (and ConverseStream's metadata) ``TokenUsage``: ``inputTokens`` counts only
    the tokens neither read from nor written to the cache; the cached ones are
    ``cacheReadInputTokens`` and ``cacheWriteInputTokens``, absent when nothing was cached
    (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_TokenUsage.html)."""
    return {
        "input_tokens": _int(usage.get("inputTokens")),
        "output_tokens": _int(usage.get("outputTokens")),
        "cache_read_tokens": _int(usage.get("cacheReadInputTokens")),
        "cache_write_tokens": _int(usage.get("cacheWriteInputTokens")),
    }


# -- Converse as Step Functions' AWS SDK integration speaks it -----------------------------
#
# The integration takes and returns the API's members in PascalCase at every level
# (https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html); a
# document member (a tool's input, a JSON schema, a JSON tool result) is data, not API shape,
# and keeps its own keys.
_DOCUMENTS_CAMEL = frozenset({"input", "json"})
_DOCUMENTS_PASCAL = frozenset({"Input", "Json"})


def to_sdk_shape(value: Any) -> Any:
    """A Converse request (botocore's camelCase) as the SDK integration's Parameters."""
    if isinstance(value, dict):
        return {
            key[:1].upper() + key[1:]: (item if key in _DOCUMENTS_CAMEL else to_sdk_shape(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [to_sdk_shape(item) for item in value]
    return value


def from_sdk_shape(value: Any) -> Any:
    """The SDK integration's Converse result in botocore's camelCase."""
    if isinstance(value, dict):
        return {
            key[:1].lower() + key[1:]: (item if key in _DOCUMENTS_PASCAL else from_sdk_shape(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [from_sdk_shape(item) for item in value]
    return value


# --- OpenAI-compatible chat completions -----------------------------------------------------


def openai_request(
    model: str, system: str, messages: Sequence[LlmMessage], tools: Sequence[ToolSpec], max_tokens: int
) -> dict[str, Any]:
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for message in messages:
        for result in message.tool_results:
            out.append({"role": "tool", "tool_call_id": result.tool_use_id, "content": json.dumps(result.output)})
        if message.role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": message.text or None}
            if message.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": c.tool_use_id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": json.dumps(c.input)},
                    }
                    for c in message.tool_calls
                ]
            out.append(entry)
        elif message.text:
            out.append({"role": "user", "content": message.text})
    request: dict[str, Any] = {"model": model, "messages": out, "max_tokens": max_tokens}
    if tools:
        request["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
            }
            for t in tools
        ]
    return request


def parse_openai_reply(response: dict[str, Any], endpoint: str) -> LlmReply:
    choice = (response.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except json.JSONDecodeError:
            arguments = {"_unparsed": function.get("arguments")}
        calls.append(ToolCall(call.get("id", ""), function.get("name", ""), arguments))
    finish = choice.get("finish_reason") or ""
    return LlmReply(
        text=message.get("content") or "",
        tool_calls=tuple(calls),
        stop_reason="tool_use" if finish == "tool_calls" else ("end_turn" if finish == "stop" else finish),
        endpoint=endpoint,
        **openai_usage(response.get("usage") or {}),
    )


def openai_usage(usage: dict[str, Any]) -> dict[str, int]:
    """Chat completions' usage in Converse's terms. ``prompt_tokens`` includes the cached
    ones, reported as ``prompt_tokens_details.cached_tokens`` (newer models also report
    ``cache_write_tokens`` there); a server that does not report them (many OpenAI-compatible
    ones) counts as nothing cached
    (https://developers.openai.com/api/docs/guides/prompt-caching)."""
    details = usage.get("prompt_tokens_details") or {}
    prompt = _int(usage.get("prompt_tokens"))
    read = min(_int(details.get("cached_tokens")), prompt)
    write = min(_int(details.get("cache_write_tokens")), prompt - read)
    return {
        "input_tokens": prompt - read - write,
        "output_tokens": _int(usage.get("completion_tokens")),
        "cache_read_tokens": read,
        "cache_write_tokens": write,
    }
