"""The client: nearest endpoint first, retries with full jitter, a circuit breaker per
endpoint, failover, and token usage as a log line and CloudWatch metrics."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from handlers.shared.llm.formats import LlmMessage, LlmReply, ToolSpec, bedrock_request, openai_request, usage_of
from handlers.shared.llm.transports import (
    BedrockTransport,
    EndpointDownError,
    LlmUnavailableError,
    OpenAiTransport,
    StreamInterrupted,
    TransientEndpointError,
)
from handlers.shared.log import emit_metric, get_logger

logger = get_logger("llm")

METRIC_NAMESPACE = "AgentInfra/LLM"


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


def cache_hit_ratio(reply: LlmReply) -> float | None:
    """The share of the prompt read from the cache (None: no prompt)."""
    prompt = reply.input_tokens + reply.cache_read_tokens + reply.cache_write_tokens
    return round(reply.cache_read_tokens / prompt, 4) if prompt else None


def record_usage(model: str, reply: LlmReply) -> None:
    """Token usage of one model call: a log line and CloudWatch metrics (EMF). The cache
    hit ratio on the dashboard is CacheReadInputTokens over all three input counts."""
    logger.info(
        "llm usage",
        extra={
            "endpoint": reply.endpoint,
            "model": model,
            **usage_of(reply),
            "cacheHitRatio": cache_hit_ratio(reply),
            "stopReason": reply.stop_reason,
        },
    )
    emit_metric(
        METRIC_NAMESPACE,
        {
            "InputTokens": reply.input_tokens,
            "OutputTokens": reply.output_tokens,
            "CacheReadInputTokens": reply.cache_read_tokens,
            "CacheWriteInputTokens": reply.cache_write_tokens,
        },
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
