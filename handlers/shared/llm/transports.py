"""The endpoints the client fails over between: Bedrock Converse in one region, or an
OpenAI-compatible HTTPS API; each turns its failures into the client's three kinds
(transient: retry here; down: go to the next endpoint; a bad request: stop)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from handlers.shared.llm.formats import LlmReply, ToolCall, bedrock_usage, parse_bedrock_reply, parse_openai_reply


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


class StreamInterrupted(Exception):
    """The endpoint failed after part of the answer was already sent on: no retry, no failover."""


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


_BEDROCK_ELSEWHERE = {"AccessDeniedException", "ResourceNotFoundException", "ModelTimeoutException"}


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
            endpoint=self.name,
            **bedrock_usage(usage),
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


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
