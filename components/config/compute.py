"""``agent-infra:compute``: the functions' memory, timeouts, the model call's timeout and
reply size, and provisioned concurrency."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from components.config.base import HTTP_TASK_TIMEOUT_SECONDS, REST_INTEGRATION_TIMEOUT_SECONDS, ConfigModel

# Functions whose concurrency can be provisioned (tools add "tool-<name>").
PROVISIONABLE = ("router", "agent-prepare", "agent-record", "agent-stream")


class ComputeConfig(ConfigModel):
    router_memory_mb: int = Field(128, ge=128, le=10240, description="Router Lambda memory in MB.")
    router_timeout_seconds: int = Field(
        10,
        ge=1,
        le=REST_INTEGRATION_TIMEOUT_SECONDS,
        description=f"Router timeout (API Gateway waits {REST_INTEGRATION_TIMEOUT_SECONDS} s at most).",
    )
    agent_step_memory_mb: int = Field(
        128,
        ge=128,
        le=10240,
        description="Memory in MB of the agent loop's prepare and record functions (the model call is the state machine's own).",
    )
    agent_step_timeout_seconds: int = Field(
        10, ge=3, le=900, description="Timeout of prepare and record: one Query, one write, no model call."
    )
    stream_memory_mb: int = Field(
        128, ge=128, le=10240, description="Memory in MB of the function that streams a WebSocket turn's model call."
    )
    stream_timeout_seconds: int = Field(
        120, ge=5, le=900, description="Timeout of a streamed model call, failover included."
    )
    llm_timeout_seconds: float = Field(
        20,
        gt=0,
        le=600,
        description=f"Timeout of one model request (the state machines' model call, a stream's request); at most {HTTP_TASK_TIMEOUT_SECONDS} with provider `openai` (the HTTP Task's limit). A turn's call also ends with the turn (`workflow.expressTimeoutSeconds`).",
    )
    max_tokens: int = Field(
        2048,
        ge=1,
        le=8192,
        description="Largest reply the model may write per step (at most 8,192: a reply travels in the state machine's 256 KB state).",
    )
    provisioned_concurrency: dict[str, Annotated[int, Field(ge=1, le=1000)]] = Field(
        default_factory=dict,
        description="Provisioned concurrency by function: `router`, `agent-prepare`, `agent-record`, `agent-stream` or `tool-<name>`. Each gets a `live` alias its callers invoke.",
    )

    @model_validator(mode="after")
    def _llm_fits_in_stream(self) -> ComputeConfig:
        if self.llm_timeout_seconds >= self.stream_timeout_seconds:
            raise ValueError(
                f"llmTimeoutSeconds {self.llm_timeout_seconds:g} must be below streamTimeoutSeconds "
                f"{self.stream_timeout_seconds}, or no failover can happen within one streamed call"
            )
        return self
