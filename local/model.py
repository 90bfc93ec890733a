"""The local stand-in for the LLM: a scripted model that speaks Bedrock's Converse wire format.

It is not a language model. It reads the conversation the agent-step sends and decides,
by fixed rules, whether to answer or which tool to call, so the whole stack can be
exercised without an account or a model:

| the user's message (this turn)                       | what the stand-in does                        |
|------------------------------------------------------|-----------------------------------------------|
| "calculate 6*7" (any arithmetic)                     | calls ``calculator``, then answers with it    |
| "remember that <topic>: <fact>"                      | calls ``memory`` (remember)                   |
| "what do you remember about <topic>"                 | calls ``memory`` (recall)                     |
| "calculate 2+3 and remember it as <topic>"           | two steps: ``calculator``, then ``memory``    |
| "open a ticket: <title>"                             | calls ``create_ticket`` (needs approval)      |
| "... then simulate an outage"                        | after the first tool, answers HTTP 503 always |
| anything else                                        | answers directly                              |

The agent-step's Bedrock client talks to it through ``endpoint_url``, exactly as it talks
to Bedrock: same request, same response shape, same error codes.
"""

from __future__ import annotations

import collections
import http.server
import json
import re
import threading
from collections.abc import Sequence
from typing import Any

_EXPRESSION = re.compile(r"calculate\s+([-+*/%().\d\s]+?)(?:\s+and\b|\s*$|\?)", re.IGNORECASE)
_REMEMBER = re.compile(r"remember that\s+([a-z0-9][a-z0-9_-]*)\s*:\s*(.+)", re.IGNORECASE)
_RECALL = re.compile(r"what do you remember about\s+([a-z0-9][a-z0-9_-]*)", re.IGNORECASE)
_REMEMBER_AS = re.compile(r"remember it as\s+([a-z0-9][a-z0-9_-]*)", re.IGNORECASE)
_TICKET = re.compile(r"open a ticket:\s*(.+?)(?:,?\s*then\b|$)", re.IGNORECASE)


def _text_of(message: dict[str, Any]) -> str:
    return "".join(block.get("text", "") for block in message.get("content", []))


def _tool_results(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [block["toolResult"] for block in message.get("content", []) if "toolResult" in block]


def decide(request: dict[str, Any]) -> dict[str, Any] | None:
    """The Converse response for ``request``; None means "answer with an outage"."""
    messages = request.get("messages", [])
    offered = {t["toolSpec"]["name"] for t in request.get("toolConfig", {}).get("tools", [])}
    # This turn starts at the last user message that is text, not tool results.
    start = max((i for i, m in enumerate(messages) if m["role"] == "user" and _text_of(m)), default=0)
    prompt = _text_of(messages[start]) if messages else ""
    results = [r for m in messages[start + 1 :] for r in _tool_results(m)]
    steps_done = sum(1 for m in messages[start + 1 :] if m["role"] == "assistant")

    if results and "simulate an outage" in prompt.lower():
        return None
    calls: list[tuple[str, dict[str, Any]]] = []
    if steps_done == 0:
        expression = _EXPRESSION.search(prompt)
        remember, recall, ticket = _REMEMBER.search(prompt), _RECALL.search(prompt), _TICKET.search(prompt)
        if expression:
            calls.append(("calculator", {"expression": expression.group(1).strip()}))
        elif remember:
            calls.append(
                (
                    "memory",
                    {"action": "remember", "topic": remember.group(1).lower(), "text": remember.group(2).strip()},
                )
            )
        elif recall:
            calls.append(("memory", {"action": "recall", "topic": recall.group(1).lower()}))
        elif ticket:
            calls.append(("create_ticket", {"title": ticket.group(1).strip()}))
    elif steps_done == 1 and _REMEMBER_AS.search(prompt) and results:
        value = results[-1]["content"][0].get("json", {}).get("result")
        calls.append(
            (
                "memory",
                {
                    "action": "remember",
                    "topic": _REMEMBER_AS.search(prompt).group(1).lower(),
                    "text": f"the result was {value}",
                },
            )
        )
    calls = [(name, arguments) for name, arguments in calls if name in offered]
    if calls:
        content = [
            {"toolUse": {"toolUseId": f"tooluse_{steps_done}_{i}", "name": name, "input": arguments}}
            for i, (name, arguments) in enumerate(calls)
        ]
        stop = "tool_use"
    else:
        content = [{"text": _answer(prompt, results)}]
        stop = "end_turn"
    tokens_in = sum(len(json.dumps(m)) for m in messages) // 4
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": tokens_in, "outputTokens": 12, "totalTokens": tokens_in + 12},
        "metrics": {"latencyMs": 1},
    }


def _answer(prompt: str, results: list[dict[str, Any]]) -> str:
    if not results:
        return f"(local stand-in model) You said: {prompt}"
    parts = []
    for result in results:
        document = result["content"][0].get("json", {})
        state = "failed" if result.get("status") == "error" else "done"
        parts.append(f"{state}: {json.dumps(document, sort_keys=True)}")
    return "(local stand-in model) " + "; ".join(parts)


def converse_response(text: str, tool_calls: Sequence[tuple[str, str, dict]] = (), usage=(10, 4)) -> dict[str, Any]:
    """A Converse answer in the wire format: ``text`` and ``(toolUseId, name, input)`` calls."""
    content: list[dict[str, Any]] = [{"text": text}] if text else []
    content += [{"toolUse": {"toolUseId": i, "name": n, "input": args}} for i, n, args in tool_calls]
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": "tool_use" if tool_calls else "end_turn",
        "usage": {"inputTokens": usage[0], "outputTokens": usage[1], "totalTokens": usage[0] + usage[1]},
        "metrics": {"latencyMs": 1},
    }


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.endswith("/converse"):
            self._send(404, {"message": "the local stand-in model speaks Converse only"}, "ResourceNotFoundException")
            return
        self.server.requests.append(request)
        response = self.server.decide(request)
        if response is None:
            self._send(503, {"message": "simulated outage"}, "ServiceUnavailableException")
        elif isinstance(response, tuple):  # (status, error type): a scripted failure
            status, error_type = response
            self._send(status, {"message": f"scripted {error_type}"}, error_type)
        else:
            self._send(200, response)

    def _send(self, status: int, body: dict[str, Any], error_type: str | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        if error_type:
            self.send_header("x-amzn-errortype", error_type)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


class ScriptedModelServer:
    """The stand-in model on a loopback port. ``decide`` (a request → a Converse answer,
    None for an outage, or ``(status, error type)``) replaces the rules above, for tests that
    script each answer; every request received is kept in ``requests`` (the last ``keep``
    of them, when given: the local stack's model runs for hours)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, decide=decide, keep: int | None = None) -> None:
        self.server = http.server.ThreadingHTTPServer((host, port), _Handler)
        self.server.decide = decide
        self.server.requests = collections.deque(maxlen=keep)
        self.requests: collections.deque[dict[str, Any]] = self.server.requests
        self.thread = threading.Thread(target=self.server.serve_forever, name="local-model", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ScriptedModelServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
