"""A turn as the model and the state machine see it.

The stored conversation becomes the model's in an order it accepts (whole turns only, the
current turn last); a turn's tool calls are summarised for its final state; and every size
that goes through a state is counted as Step Functions counts it, within the budgets below.
``handlers.agent_step`` builds on these; they are pure functions over records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from handlers.shared.llm import LlmMessage, ToolCall, ToolResult
from handlers.shared.llm.caching import estimate_tokens
from handlers.shared.store import Message, NewMessage

# -- payload budgets ------------------------------------------------------------------------
# Step Functions refuses a state over 256 KiB "as a UTF-8 encoded string"
# (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html). Every size here is
# counted that way (state_bytes), and the worst case of a state adds up below the limit with
# a margin (tests/test_agent_step.py holds the sum):
#   step 1:  message + request + model reply + context
#   step n:  tool results (16 x 4 KB inline, handlers.shared.tooling) + request + reply + context
STATE_LIMIT_BYTES = 256 * 1024
REQUEST_BYTES = 100 * 1024
"""The model request: the conversation window is cut (oldest first) to fit."""
TOOL_OUTPUT_IN_REQUEST_BYTES = 16 * 1024
"""A tool output read back by reference is shortened to this in the model request."""
MIN_TOOL_OUTPUT_IN_REQUEST_BYTES = 512
"""The least a tool input or output of the current turn is cut to before its oldest steps go."""
REPLY_BYTES = 40 * 1024
"""What a model reply can hold: ``compute.maxTokens`` is capped so (8,192 tokens)."""
TURN_SUMMARY_BYTES = 24 * 1024
"""The most the turn's tool calls carried to the final answer take (``turn_summary``)."""
PREVIEW_CHARS = 500
USAGE_KEYS = ("inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens")
"""A turn's token usage, as each step records it (``handlers.shared.llm.usage_of``)."""


def state_bytes(value: Any) -> int:
    """Size of a value in a state, as Step Functions counts it: its JSON as UTF-8."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))


# -- from stored messages to the model's conversation -----------------------------------------


def to_llm_message(message: Message | NewMessage) -> LlmMessage:
    if message.role == "user":
        return LlmMessage("user", text=message.text)
    if message.role == "assistant":
        calls = tuple(ToolCall(c["toolUseId"], c["name"], c.get("input") or {}) for c in message.tool_calls)
        return LlmMessage("assistant", text=message.text, tool_calls=calls)
    # Cut the same way at every step (the step that ran the tool read a long output back by
    # reference, shortened; later steps read it whole from the table), so the prompt's bytes,
    # and its cached prefix, do not change from one step to the next.
    results = tuple(
        ToolResult(
            r["toolUseId"],
            r["name"],
            shortened(r.get("output"), TOOL_OUTPUT_IN_REQUEST_BYTES),
            r.get("status") != "SUCCEEDED",
        )
        for r in message.tool_calls
    )
    return LlmMessage("user", tool_results=results)


def message_tokens(message: Message | NewMessage) -> int:
    """Tokens a stored message takes in a model request, estimated as the prompt cache's
    minimum is (``handlers.shared.llm.caching.estimate_tokens``)."""
    return estimate_tokens(msgspec.to_builtins(to_llm_message(message)))


def history_hint(messages: Sequence[Message]) -> int | None:
    """Where the newest step's request started its earlier turns (``Message.history_from``
    of the newest assistant message that has one)."""
    for message in sorted(messages, key=lambda m: m.seq, reverse=True):
        if message.role == "assistant" and message.history_from is not None:
            return message.history_from
    return None


def bounded_history(
    history: Sequence[Message],
    current_turn: str,
    *,
    budget: int,
    hint: int | None,
    whole_session: bool,
    max_messages: int,
    first_seq: int,
) -> tuple[list[Message], int]:
    """The messages a model call sends (``conversation``'s order) with the earlier turns cut
    to ``budget`` tokens, and the step the kept turns start from (stored with the reply, the
    next call's ``hint``).

    Whole turns are dropped, oldest first, never summarised: a summary is one more model
    call on the turn's path (its latency and tokens) and its words change the prompt's
    prefix whenever it is redone. A cut keeps a turn's tool calls with their results, so no
    ``toolResult`` is left without the ``toolUse`` it answers (Converse refuses that).

    The start stays where the last call put it (``hint``) while the turns from there fit
    the budget and are all in the window read (``whole_session``: the read reached the
    session's first step). When they do not, the newest turns that fit half the budget
    (and half of ``max_messages``) are kept, so the start, and with it every cached prefix,
    stays put for the many turns it takes to grow back: a window that slid by one turn each
    turn would make each turn's first call write its whole history to the cache again.
    ``first_seq`` is this step's position: the start when no earlier turn is kept."""
    turns: list[list[Message]] = []
    for message in history:
        if message.turn_id == current_turn:
            continue
        if turns and turns[-1][0].turn_id == message.turn_id:
            turns[-1].append(message)
        else:
            turns.append([message])
    current = [m for m in history if m.turn_id == current_turn]
    if hint is not None and not 0 <= hint <= first_seq:
        hint = None  # not a start a call of this session could have stored: cut afresh
    sizes = [sum(message_tokens(m) for m in turn) for turn in turns]
    starts = [turn[0].seq for turn in turns]
    if hint is not None and (hint in starts or (hint == 0 and whole_session) or hint > max(starts, default=-1)):
        kept = [n for n, start in enumerate(starts) if start >= hint]
        if sum(sizes[n] for n in kept) <= budget:
            return [m for n in kept for m in turns[n]] + current, hint
    if hint is None and whole_session and sum(sizes) <= budget:
        return [m for turn in turns for m in turn] + current, 0
    kept, tokens, count = [], 0, 0
    for n in reversed(range(len(turns))):
        if tokens + sizes[n] > budget // 2 or count + len(turns[n]) > max_messages // 2:
            break
        kept.insert(0, n)
        tokens, count = tokens + sizes[n], count + len(turns[n])
    start = starts[kept[0]] if kept else first_seq
    return [m for n in kept for m in turns[n]] + current, start


def conversation(history: Sequence[Message], current_turn: str) -> list[Message]:
    """The stored messages (oldest first) the model may see, in an order it accepts.

    Every tool call must be answered by its result in the next message, so only whole turns
    go in: a turn that failed (its ``failed`` marker is in the window) or is still running
    elsewhere (it ends in unanswered tool calls) is left out, and the current turn's own
    steps come last, whatever another turn wrote in between. The window may start inside a
    turn; it starts at that turn's first user message instead.
    """
    failed = {m.turn_id for m in history if m.role == "failed"}
    turns: dict[str, list[Message]] = {}
    for message in history:
        if message.role != "failed" and message.turn_id not in failed:
            turns.setdefault(message.turn_id, []).append(message)
    ordered: list[Message] = []
    for turn_id, messages in turns.items():
        if turn_id == current_turn:
            continue
        start = next((i for i, m in enumerate(messages) if m.role == "user"), None)
        if start is None:
            continue
        whole = messages[start:]
        if whole[-1].role == "assistant" and not whole[-1].tool_calls:
            ordered.extend(whole)
    return ordered + turns.get(current_turn, [])


def without_tool_blocks(messages: Sequence[LlmMessage]) -> list[LlmMessage]:
    """With no tool offered, Converse refuses tool blocks in the conversation: keep the text."""
    out = []
    for message in messages:
        if message.tool_results or (message.role == "assistant" and not message.text):
            continue
        out.append(LlmMessage(message.role, text=message.text))
    return out


def shortened(output: Any, limit: int) -> Any:
    """``output``, or a preview of it that is itself at most ``limit`` bytes as JSON, so a
    preview shortened again is the same preview (a long output is cut once whichever step
    renders it, and the prompt's bytes stay the same)."""
    text = json.dumps(output, ensure_ascii=False, default=str)
    size = len(text.encode())
    if size <= limit:
        return output
    keep = limit // 4
    while True:
        preview = {"preview": text[:keep], "truncated": True, "bytes": size}
        if keep == 0 or state_bytes(preview) <= limit:
            return preview
        keep //= 2


def turn_summary(
    history: Sequence[Message | NewMessage], current_turn: str
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The current turn's tool calls so far (input, output, status) and the tokens its
    earlier steps used, within TURN_SUMMARY_BYTES whatever the number of steps and calls:
    every call is listed by name and status first, then, in order, as many as fit get
    previews of their input and output, then as many as fit whole; calls beyond what even
    names fit are counted in a last entry ``{"omitted": n}``. Every state after Prepare
    carries the summary, and Step Functions ends a run whose state passes 256 KiB
    (States.DataLimitExceeded, which no catcher catches:
    https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html)."""
    start = max((i for i, m in enumerate(history) if m.role == "user"), default=-1)
    turn = history[start + 1 :] if start >= 0 else list(history)
    inputs = {c["toolUseId"]: c.get("input") for m in turn if m.role == "assistant" for c in m.tool_calls}
    forms = [
        _summary_forms(result, inputs.get(result["toolUseId"]))
        for message in turn
        if message.role == "tool"
        for result in message.tool_calls
    ]
    budget = TURN_SUMMARY_BYTES - state_bytes([{"omitted": len(forms)}])
    sizes = [[state_bytes(form) + 1 for form in options] for options in forms]  # +1: the comma
    listed, total = 0, 0
    while listed < len(forms) and total + sizes[listed][-1] <= budget:
        total += sizes[listed][-1]
        listed += 1
    chosen = [len(options) - 1 for options in forms[:listed]]
    for better in (1, 0):  # previews for as many as fit, then whole calls
        for n in range(listed):
            grown = total - sizes[n][chosen[n]] + sizes[n][better]
            if better < chosen[n] and grown <= budget:
                total, chosen[n] = grown, better
    calls = [forms[n][chosen[n]] for n in range(listed)]
    if listed < len(forms):
        calls.append({"omitted": len(forms) - listed})
    usage = dict.fromkeys(USAGE_KEYS, 0)
    for message in turn:
        if message.role == "assistant" and message.usage:
            for key in USAGE_KEYS:
                usage[key] += int(message.usage.get(key, 0))
    return calls, usage


def _preview(value: Any) -> Any:
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) <= PREVIEW_CHARS:
        return value
    return {"preview": text[:PREVIEW_CHARS], "truncated": True}


def _summary_forms(result: Mapping[str, Any], tool_input: Any) -> list[dict[str, Any]]:
    """One call whole, with previews, and by name and status only (largest first)."""
    name, status = result["name"], result.get("status")
    return [
        {"name": name, "input": tool_input, "output": result.get("output"), "status": status},
        {"name": name, "input": _preview(tool_input), "output": _preview(result.get("output")), "status": status},
        {"name": name, "status": status, "truncated": True},
    ]
