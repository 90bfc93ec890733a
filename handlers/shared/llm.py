"""The LLM client: Bedrock Converse or any OpenAI-compatible chat-completions API, with failover.

Endpoints come ordered nearest first (computed at deploy time from the stack config and the
inter-region latency table). For each call the client walks that list:

- each endpoint has its own timeout and a circuit breaker (kept across warm invocations);
- throttling and server errors are retried on the same endpoint with full-jitter backoff;
- a timeout, an unreachable endpoint or one that does not serve the model fails over to
  the next endpoint at once; exhausted retries fail over too;
- a request the model rejects as invalid fails at once (it would fail everywhere);
- when every endpoint failed, :class:`LlmUnavailableError` says what happened at each.

Token usage is logged and written as CloudWatch metrics (Embedded Metric Format).
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from handlers.shared.log import emit_metric, get_logger

logger = get_logger("llm")

METRIC_NAMESPACE = "AgentInfra/LLM"


class LlmError(Exception):
    """Base of the client's errors."""


class LlmRequestError(LlmError):
    """The model rejected the request itself (bad input); retrying elsewhere would not help."""


class LlmUnavailableError(LlmError):
    """Every endpoint failed; ``failures`` lists (endpoint, reason) in the order tried."""

    def __init__(self, failures: list[tuple[str, str]]):
        self.failures = failures
        detail = "; ".join(f"{name}: {reason}" for name, reason in failures)
        super().__init__(f"all {len(failures)} LLM endpoints failed: {detail}")


class TransientEndpointError(Exception):
    """Throttling or a server error: worth retrying on the same endpoint after a pause."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class EndpointDownError(Exception):
    """Timed out, unreachable, or not serving the model: go to the next endpoint now."""


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
    output_tokens: int
    endpoint: str = ""


# --- circuit breaker ----------------------------------------------------------------------


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; after ``reset_after`` seconds lets one
    trial call through (half-open); a success closes it, a failure opens it again."""

    def __init__(self, threshold: int = 3, reset_after: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.threshold = threshold
        self.reset_after = reset_after
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_after:
            return "half-open"
        return "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def release(self) -> None:
        """The trial call ended without telling anything about the endpoint (the request
        itself was bad, or we ran out of time): let the next call be the trial."""
        self._trial_in_flight = False

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._trial_in_flight = False
        if self._opened_at is not None:  # the half-open trial failed
            self._opened_at = self._clock()
            return
        self._failures += 1
        if self._failures >= self.threshold:
            self._opened_at = self._clock()


# --- transports ---------------------------------------------------------------------------

_BEDROCK_TRANSIENT = {
    "ThrottlingException",
    "ServiceUnavailableException",
    "InternalServerException",
    "ModelNotReadyException",
    "TooManyRequestsException",
    "ModelStreamErrorException",
}


def _error_code(error: Any) -> str:
    """The error code, capitalised: ConverseStream reports ``throttlingException``."""
    code = error.response.get("Error", {}).get("Code", "") or ""
    return code[:1].upper() + code[1:]


class StreamInterrupted(Exception):
    """The endpoint failed after part of the answer was already sent on: no retry, no failover."""


_BEDROCK_ELSEWHERE = {"AccessDeniedException", "ResourceNotFoundException", "ModelTimeoutException"}


def _bedrock_content(message: LlmMessage) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    if message.text:
        content.append({"text": message.text})
    for call in message.tool_calls:
        content.append({"toolUse": {"toolUseId": call.tool_use_id, "name": call.name, "input": call.input}})
    for result in message.tool_results:
        document = result.output if isinstance(result.output, dict) else {"result": result.output}
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
    model: str, system: str, messages: Sequence[LlmMessage], tools: Sequence[ToolSpec], max_tokens: int
) -> dict[str, Any]:
    """Converse arguments. Consecutive messages of one role are merged: Converse wants
    user and assistant to alternate."""
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
    return request


def parse_bedrock_reply(response: dict[str, Any], endpoint: str) -> LlmReply:
    content = response.get("output", {}).get("message", {}).get("content", [])
    text = "".join(block["text"] for block in content if "text" in block)
    calls = tuple(
        ToolCall(block["toolUse"]["toolUseId"], block["toolUse"]["name"], block["toolUse"].get("input") or {})
        for block in content
        if "toolUse" in block
    )
    usage = response.get("usage", {})
    return LlmReply(
        text=text,
        tool_calls=calls,
        stop_reason=response.get("stopReason", ""),
        input_tokens=int(usage.get("inputTokens", 0)),
        output_tokens=int(usage.get("outputTokens", 0)),
        endpoint=endpoint,
    )


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


def reply_to_dict(reply: LlmReply) -> dict[str, Any]:
    """A reply as plain data (a Lambda's result in the state machine)."""
    return msgspec.to_builtins(reply)


def reply_from_dict(value: dict[str, Any]) -> LlmReply:
    return msgspec.convert(value, LlmReply)


class BedrockTransport:
    """Converse on one region's ``bedrock-runtime``."""

    def __init__(self, region: str, timeout: float, client: Any | None = None):
        self.name = f"bedrock:{region}"
        self.region = region
        self.timeout = timeout
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "bedrock-runtime",
                region_name=self.region,
                # Our own retries and failover; botocore's would hide throttling from the breaker.
                config=Config(
                    connect_timeout=min(3.0, self.timeout), read_timeout=self.timeout, retries={"max_attempts": 1}
                ),
            )
        return self._client

    def converse(self, request: dict[str, Any]) -> LlmReply:
        from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

        try:
            response = self.client.converse(**request)
        except ClientError as error:
            code = _error_code(error)
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _BEDROCK_TRANSIENT or status >= 500 or status == 429:
                raise TransientEndpointError(f"{code or status}") from None
            if code in _BEDROCK_ELSEWHERE:
                raise EndpointDownError(code) from None
            raise LlmRequestError(
                f"{self.name} rejected the request: {code}: {error.response.get('Error', {}).get('Message', '')}"
            ) from None
        except (ReadTimeoutError, ConnectTimeoutError):
            raise EndpointDownError(f"timed out after {self.timeout:g}s") from None
        except BotoCoreError as error:
            raise EndpointDownError(f"unreachable: {type(error).__name__}") from None
        return parse_bedrock_reply(response, self.name)

    def converse_stream(self, request: dict[str, Any], on_text: Callable[[str], None]) -> LlmReply:
        """ConverseStream: text deltas go to ``on_text`` as they arrive; the reply is
        assembled from the events (text, tool uses, stop reason, usage)."""
        from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

        try:
            response = self.client.converse_stream(**request)
            text: list[str] = []
            tools: dict[int, dict[str, Any]] = {}
            stop_reason, usage = "", {}
            for event in response["stream"]:
                if "contentBlockStart" in event:
                    start = event["contentBlockStart"]
                    if "toolUse" in start.get("start", {}):
                        use = start["start"]["toolUse"]
                        tools[start["contentBlockIndex"]] = {"id": use["toolUseId"], "name": use["name"], "input": []}
                elif "contentBlockDelta" in event:
                    block = event["contentBlockDelta"]
                    delta = block["delta"]
                    if "text" in delta:
                        text.append(delta["text"])
                        on_text(delta["text"])
                    elif "toolUse" in delta and block["contentBlockIndex"] in tools:
                        tools[block["contentBlockIndex"]]["input"].append(delta["toolUse"].get("input", ""))
                elif "messageStop" in event:
                    stop_reason = event["messageStop"].get("stopReason", "")
                elif "metadata" in event:
                    usage = event["metadata"].get("usage", {})
                else:
                    for failure in (
                        "throttlingException",
                        "serviceUnavailableException",
                        "internalServerException",
                        "modelStreamErrorException",
                    ):
                        if failure in event:
                            raise TransientEndpointError(failure)
        except ClientError as error:
            code = _error_code(error)
            if code in _BEDROCK_TRANSIENT:
                raise TransientEndpointError(code) from None
            if code in _BEDROCK_ELSEWHERE:
                raise EndpointDownError(code) from None
            raise LlmRequestError(f"{self.name} rejected the request: {code}") from None
        except (ReadTimeoutError, ConnectTimeoutError):
            raise EndpointDownError(f"timed out after {self.timeout:g}s") from None
        except BotoCoreError as error:
            raise EndpointDownError(f"unreachable: {type(error).__name__}") from None
        calls = []
        for index in sorted(tools):
            raw = "".join(tools[index]["input"]) or "{}"
            try:
                arguments = json.loads(raw)
            except json.JSONDecodeError:
                arguments = {"_unparsed": raw}
            calls.append(ToolCall(tools[index]["id"], tools[index]["name"], arguments))
        return LlmReply(
            text="".join(text),
            tool_calls=tuple(calls),
            stop_reason=stop_reason,
            input_tokens=int(usage.get("inputTokens", 0)),
            output_tokens=int(usage.get("outputTokens", 0)),
            endpoint=self.name,
        )


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
    usage = response.get("usage") or {}
    finish = choice.get("finish_reason") or ""
    return LlmReply(
        text=message.get("content") or "",
        tool_calls=tuple(calls),
        stop_reason="tool_use" if finish == "tool_calls" else ("end_turn" if finish == "stop" else finish),
        input_tokens=int(usage.get("prompt_tokens", 0)),
        output_tokens=int(usage.get("completion_tokens", 0)),
        endpoint=endpoint,
    )


class OpenAiTransport:
    """POST ``{base}/chat/completions`` on an OpenAI-compatible HTTPS API."""

    def __init__(self, base_url: str, timeout: float, api_key: Callable[[], str | None] = lambda: None):
        self.name = base_url
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.timeout = timeout
        self._api_key = api_key

    def converse(self, request: dict[str, Any]) -> LlmReply:
        headers = {"content-type": "application/json", "accept": "application/json"}
        key = self._api_key()
        if key:
            headers["authorization"] = f"Bearer {key}"
        # The URL comes from the validated stack config: https only.
        payload = json.dumps(request).encode()
        http_request = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(http_request, timeout=self.timeout) as response:  # noqa: S310
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            status = error.code
            retry_after = _retry_after(error.headers.get("retry-after") if error.headers else None)
            if status == 429 or status >= 500:
                raise TransientEndpointError(f"HTTP {status}", retry_after) from None
            if status in (401, 403, 404):
                raise EndpointDownError(f"HTTP {status}") from None
            raise LlmRequestError(f"{self.name} rejected the request: HTTP {status}") from None
        except TimeoutError:
            raise EndpointDownError(f"timed out after {self.timeout:g}s") from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise EndpointDownError(f"timed out after {self.timeout:g}s") from None
            raise EndpointDownError(f"unreachable: {error.reason}") from None
        except (ConnectionError, json.JSONDecodeError) as error:
            raise EndpointDownError(f"unreachable: {type(error).__name__}") from None
        return parse_openai_reply(body, self.name)


class _Streaming:
    """A transport seen through its streaming call, for the retry loop. Once text went out,
    a failure is final: retrying or failing over would send the answer's start twice."""

    def __init__(self, transport: Any, on_text: Callable[[str], None]) -> None:
        self.transport = transport
        self.name = transport.name
        self.on_text = on_text
        self.emitted = False

    def _relay(self, delta: str) -> None:
        self.emitted = True
        self.on_text(delta)

    def converse(self, request: dict[str, Any]) -> LlmReply:
        try:
            return self.transport.converse_stream(request, self._relay)
        except (TransientEndpointError, EndpointDownError) as error:
            if self.emitted:
                raise StreamInterrupted(str(error)) from None
            raise


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


# --- the client ---------------------------------------------------------------------------

# Breakers live as long as the execution environment, so a warm Lambda remembers which
# endpoints are failing.
_breakers: dict[str, CircuitBreaker] = {}


def breaker_for(name: str, clock: Callable[[], float] = time.monotonic) -> CircuitBreaker:
    if name not in _breakers:
        _breakers[name] = CircuitBreaker(clock=clock)
    return _breakers[name]


class RetryPolicy(msgspec.Struct, frozen=True):
    attempts_per_endpoint: int = 3
    base_delay: float = 0.25
    max_delay: float = 4.0

    def backoff(self, attempt: int, rng: Callable[[], float]) -> float:
        """Full jitter: a uniform pause in [0, min(max, base * 2**attempt)]."""
        return rng() * min(self.max_delay, self.base_delay * (2**attempt))


class LlmClient:
    def __init__(
        self,
        provider: str,
        model: str,
        transports: list[Any],
        retry: RetryPolicy | None = None,
        breakers: Callable[[str], CircuitBreaker] = breaker_for,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.model = model
        self.transports = transports
        self.retry = retry or RetryPolicy()
        self.breakers = breakers
        self.sleep = sleep
        self.rng = rng
        self.clock = clock

    def converse(
        self,
        system: str,
        messages: Sequence[LlmMessage],
        tools: Sequence[ToolSpec] = (),
        max_tokens: int = 2048,
        deadline: float | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> LlmReply:
        """One model call, failing over along the endpoint list. ``deadline`` (a ``clock``
        time) stops further attempts once it would be passed. With ``on_text``, text is
        streamed where the transport can (Bedrock ConverseStream) and handed over whole
        otherwise; once any text went out, a failure is final (a failover would repeat it)."""
        build = bedrock_request if self.provider == "bedrock" else openai_request
        return self.send(build(self.model, system, messages, tools, max_tokens), deadline, on_text)

    def send(
        self,
        request: dict[str, Any],
        deadline: float | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> LlmReply:
        """A request already built for this provider, failing over as :meth:`converse` does."""
        failures: list[tuple[str, str]] = []
        for transport in self.transports:
            breaker = self.breakers(transport.name)
            if not breaker.allow():
                failures.append((transport.name, "circuit open"))
                continue
            streamed = on_text is not None and hasattr(transport, "converse_stream")
            call = _Streaming(transport, on_text) if streamed else transport
            try:
                outcome = self._try_endpoint(call, request, deadline)
            except StreamInterrupted as error:
                breaker.record_failure()
                raise LlmUnavailableError([*failures, (transport.name, f"{error} (mid-stream)")]) from None
            except BaseException:
                breaker.release()  # a bad request says nothing about the endpoint
                raise
            if isinstance(outcome, LlmReply):
                breaker.record_success()
                if on_text is not None and not streamed and outcome.text:
                    on_text(outcome.text)
                self._record_usage(outcome)
                return outcome
            reason, counts = outcome
            if counts:
                breaker.record_failure()
            else:
                breaker.release()
            failures.append((transport.name, reason))
            logger.warning("llm endpoint failed, trying the next", extra={"endpoint": transport.name, "reason": reason})
        raise LlmUnavailableError(failures)

    def _try_endpoint(
        self, transport: Any, request: dict[str, Any], deadline: float | None
    ) -> LlmReply | tuple[str, bool]:
        """The reply, or why the endpoint gave none and whether that counts against it
        (running out of time does not: the endpoint was never asked)."""
        last = ""
        for attempt in range(self.retry.attempts_per_endpoint):
            if deadline is not None and self.clock() >= deadline:
                return f"no time left ({last or 'not tried'})", bool(last)
            try:
                return transport.converse(request)
            except TransientEndpointError as error:
                last = str(error)
                if attempt + 1 == self.retry.attempts_per_endpoint:
                    break
                pause = self.retry.backoff(attempt, self.rng)
                if error.retry_after is not None:
                    pause = min(max(pause, error.retry_after), self.retry.max_delay)
                if deadline is not None and self.clock() + pause >= deadline:
                    return f"{last}; no time left to retry", True
                self.sleep(pause)
            except EndpointDownError as error:
                return str(error), True
        return f"{last} after {self.retry.attempts_per_endpoint} attempts", True

    def _record_usage(self, reply: LlmReply) -> None:
        record_usage(self.model, reply)


def record_usage(model: str, reply: LlmReply) -> None:
    """Token usage of one model call: a log line and CloudWatch metrics (EMF)."""
    logger.info(
        "llm usage",
        extra={
            "endpoint": reply.endpoint,
            "model": model,
            "inputTokens": reply.input_tokens,
            "outputTokens": reply.output_tokens,
            "stopReason": reply.stop_reason,
        },
    )
    emit_metric(
        METRIC_NAMESPACE,
        {"InputTokens": reply.input_tokens, "OutputTokens": reply.output_tokens},
        dimensions={"Model": model},
    )


def build_client(
    provider: str,
    model: str,
    endpoints: Sequence[str],
    timeout: float,
    api_key: Callable[[], str | None] = lambda: None,
    **options: Any,
) -> LlmClient:
    """The client for an ordered endpoint list: regions for ``bedrock``, base URLs for ``openai``."""
    if not endpoints:
        raise ValueError("the LLM client needs at least one endpoint")
    if provider == "bedrock":
        transports: list[Any] = [BedrockTransport(region, timeout) for region in endpoints]
    elif provider == "openai":
        transports = [OpenAiTransport(url, timeout, api_key) for url in endpoints]
    else:
        raise ValueError(f"unknown LLM provider {provider!r}; expected bedrock or openai")
    return LlmClient(provider=provider, model=model, transports=transports, **options)
