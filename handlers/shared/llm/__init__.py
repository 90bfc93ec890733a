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

from handlers.shared.llm.client import (
    METRIC_NAMESPACE,
    CircuitBreaker,
    LlmClient,
    RetryPolicy,
    breaker_for,
    build_client,
    record_usage,
)
from handlers.shared.llm.formats import (
    LlmMessage,
    LlmReply,
    ToolCall,
    ToolResult,
    ToolSpec,
    bedrock_request,
    canonical,
    from_sdk_shape,
    openai_request,
    parse_bedrock_reply,
    parse_openai_reply,
    reply_from_dict,
    reply_to_dict,
    to_sdk_shape,
    usage_of,
)
from handlers.shared.llm.transports import (
    BedrockTransport,
    EndpointDownError,
    LlmError,
    LlmRequestError,
    LlmUnavailableError,
    OpenAiTransport,
    StreamInterrupted,
    TransientEndpointError,
)

__all__ = [
    "METRIC_NAMESPACE",
    "BedrockTransport",
    "CircuitBreaker",
    "EndpointDownError",
    "LlmClient",
    "LlmError",
    "LlmMessage",
    "LlmReply",
    "LlmRequestError",
    "LlmUnavailableError",
    "OpenAiTransport",
    "RetryPolicy",
    "StreamInterrupted",
    "ToolCall",
    "ToolResult",
    "ToolSpec",
    "TransientEndpointError",
    "bedrock_request",
    "breaker_for",
    "build_client",
    "canonical",
    "from_sdk_shape",
    "openai_request",
    "parse_bedrock_reply",
    "parse_openai_reply",
    "record_usage",
    "reply_from_dict",
    "reply_to_dict",
    "to_sdk_shape",
    "usage_of",
]
