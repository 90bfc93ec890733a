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
| "summarize https://... https://..."                  | calls ``summarize_documents`` (fargate-spot)  |
| "search my memories for <words>"                     | calls ``memory_search`` (continuation)        |
| "... then simulate an outage"                        | after the first tool, answers HTTP 503 always |
| anything else                                        | answers directly                              |

The agent-step's Bedrock client talks to it through ``endpoint_url``, exactly as it talks
to Bedrock: same request, same response shape, same error codes.

Its usage is counted as Bedrock counts it with prompt caching (:class:`PromptCache`): a
request's prefix up to a ``cachePoint`` that an earlier request wrote within the TTL is read
from the cache, the prefix up to its last checkpoint past that is written, and
``inputTokens`` is only the rest; so tests and ``make cost`` measure cache hits, not assume
them.

Not emulated: any model's judgement (the rules above are all it knows), ConverseStream,
guardrails, and Bedrock's quotas and throttling (its only failure is the scripted 503).
"""

from __future__ import annotations

import collections
import hashlib
import http.server
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

from handlers.shared.llm.caching import cache_support, estimate_tokens

_EXPRESSION = re.compile(r"calculate\s+([-+*/%().\d\s]+?)(?:\s+and\b|\s*$|\?)", re.IGNORECASE)
_REMEMBER = re.compile(r"remember that\s+([a-z0-9][a-z0-9_-]*)\s*:\s*(.+)", re.IGNORECASE)
_RECALL = re.compile(r"what do you remember about\s+([a-z0-9][a-z0-9_-]*)", re.IGNORECASE)
_REMEMBER_AS = re.compile(r"remember it as\s+([a-z0-9][a-z0-9_-]*)", re.IGNORECASE)
_TICKET = re.compile(r"open a ticket:\s*(.+?)(?:,?\s*then\b|$)", re.IGNORECASE)
_SUMMARIZE = re.compile(r"summari[sz]e\s+((?:https://\S+\s*)+)", re.IGNORECASE)
_SEARCH = re.compile(r"search my memories for\s+(.+?)\s*$", re.IGNORECASE)


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
        elif _SUMMARIZE.search(prompt):
            calls.append(("summarize_documents", {"urls": _SUMMARIZE.search(prompt).group(1).split()}))
        elif _SEARCH.search(prompt):
            calls.append(("memory_search", {"query": _SEARCH.search(prompt).group(1)}))
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
    tokens_in = PromptCache.prompt_tokens(request)
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": tokens_in, "outputTokens": 12, "totalTokens": tokens_in + 12},
        "metrics": {"latencyMs": 1},
    }


class PromptCache:
    """Bedrock's prompt cache, as https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html
    describes it: the prefix before each ``cachePoint`` (in the order tools, system,
    messages) is an entry; an entry lives 5 minutes, and each hit starts its 5 minutes again;
    a checkpoint whose prefix is under the model's minimum tokens caches nothing; a model
    without caching ignores checkpoints. Only explicit checkpoints are looked up (Claude
    also looks back about 20 blocks from one: not emulated, so hits here are never more
    than AWS's). Tokens are the estimate the request builder uses."""

    TTL_SECONDS = 300.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._expiry: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _parts(request: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """Every block in cache order, each with where it is (section, message number and
        role): two prompts match only block for block, in the same messages."""
        parts = [("tool", t) for t in request.get("toolConfig", {}).get("tools", [])]
        parts += [("system", b) for b in request.get("system", [])]
        for n, message in enumerate(request.get("messages", [])):
            parts += [(f"{n}:{message['role']}", b) for b in message.get("content", [])]
        return parts

    @classmethod
    def prompt_tokens(cls, request: dict[str, Any]) -> int:
        return sum(estimate_tokens(b) for _, b in cls._parts(request) if "cachePoint" not in b)

    def usage(self, model_id: str, request: dict[str, Any]) -> dict[str, int]:
        """The input side of a Converse ``usage`` for ``request`` sent to ``model_id``."""
        support = cache_support(model_id)
        digest, tokens, points = hashlib.sha256(model_id.encode()), 0, []
        for where, block in self._parts(request):
            if "cachePoint" in block:
                points.append((tokens, digest.hexdigest()))
                continue
            # The bytes as sent (keys in their order): a cache matches the prompt exactly.
            digest.update(json.dumps([where, block]).encode())
            tokens += estimate_tokens(block)
        if support is None:
            return {"inputTokens": tokens, "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0}
        now = self._clock()
        with self._lock:
            read = 0
            for at, key in reversed(points):
                if self._expiry.get((model_id, key), 0.0) > now:
                    read = at
                    self._expiry[(model_id, key)] = now + self.TTL_SECONDS
                    break
            written = read
            for at, key in points:
                if at > read and at >= support.min_tokens:
                    self._expiry[(model_id, key)] = now + self.TTL_SECONDS
                    written = at
        return {
            "inputTokens": tokens - written,
            "cacheReadInputTokens": read,
            "cacheWriteInputTokens": written - read,
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
        if isinstance(response, dict) and self.server.prompt_cache is not None:
            model_id = urllib.parse.unquote(self.path.split("/")[-2])
            usage = {**response.get("usage", {}), **self.server.prompt_cache.usage(model_id, request)}
            usage["totalTokens"] = sum(
                usage.get(k, 0)
                for k in ("inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens")
            )
            response = {**response, "usage": usage}
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
    of them, when given: the local stack's model runs for hours). With ``prompt_cache``, the
    usage of every answer is counted through it."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        decide=decide,
        keep: int | None = None,
        prompt_cache: PromptCache | None = None,
    ) -> None:
        self.server = http.server.ThreadingHTTPServer((host, port), _Handler)
        self.server.decide = decide
        self.server.prompt_cache = prompt_cache
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
