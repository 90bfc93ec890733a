"""``agent-infra:llm``: the model, the provider that serves it and where."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from components.config.base import ConfigModel, https_url, partition_of

HISTORY_TOKENS = 8_000
# A model request is cut to 100 KB (handlers.shared.turns.REQUEST_BYTES), ~25,000 tokens.
HISTORY_TOKENS_MAX = 24_000


class LlmConfig(ConfigModel):
    provider: Literal["bedrock", "openai"] = Field(
        "bedrock",
        description="`bedrock` (Converse API, IAM auth) or `openai` (any OpenAI-compatible HTTPS chat-completions API).",
    )
    model: str = Field(
        min_length=1,
        description="Model id: a Bedrock model or inference-profile id, or the model name of the OpenAI-compatible API.",
    )
    endpoints: list[str] = Field(
        default_factory=list,
        description="Where the model is served: regions (`bedrock`) or `https://` URLs (`openai`). Empty with `bedrock` means each region's own Bedrock.",
    )
    endpoint_regions: dict[str, str] = Field(
        default_factory=dict,
        description="`openai` only: the AWS region each endpoint URL runs in; orders them nearest first and, with a domain, makes `llm.<zone>` latency records.",
    )
    health_path: str = Field(
        "/health", description="Path the Route 53 health checks of `llm.<zone>` probe on each endpoint."
    )
    api_key: SecretStr | None = Field(
        None,
        description="API key of the OpenAI-compatible API. Set it with `pulumi config set --secret --path llm.apiKey`; never logged.",
    )
    history_tokens: int = Field(
        HISTORY_TOKENS,
        ge=500,
        le=HISTORY_TOKENS_MAX,
        description="Most tokens of earlier turns a model call sends (estimated at 4 characters a token). Over it, the oldest whole turns are dropped, down to half of it, so the cached prefix stays the same for the turns after.",
    )
    prompt_caching: bool = Field(
        True,
        description="`bedrock`: mark the prompt's stable prefix for Bedrock's prompt cache, on the models that cache (docs/architecture.md, \"Prompt caching\"). OpenAI-compatible APIs cache by themselves.",
    )

    @model_validator(mode="after")
    def _endpoints_match_provider(self) -> LlmConfig:
        if len(set(self.endpoints)) != len(self.endpoints):
            raise ValueError(f"endpoints lists a value twice: {self.endpoints}")
        if self.provider == "bedrock":
            if self.endpoint_regions:
                raise ValueError("endpointRegions is only for provider openai (bedrock endpoints are regions)")
            unknown = [e for e in self.endpoints if partition_of(e) is None]
            if unknown:
                raise ValueError(f"bedrock endpoints must be AWS regions; not regions: {unknown}")
            if self.api_key is not None:
                raise ValueError("apiKey is only for provider openai; bedrock authenticates with IAM")
        else:
            if not self.endpoints:
                raise ValueError("provider openai needs at least one https:// endpoint")
            if self.api_key is None:
                # The HTTP Task authenticates through an EventBridge connection, which needs one.
                raise ValueError("provider openai needs apiKey (pulumi config set --secret --path llm.apiKey ...)")
            stray = sorted(set(self.endpoint_regions) - set(self.endpoints))
            if stray:
                raise ValueError(f"endpointRegions names URLs that are not endpoints: {stray}")
            unknown = sorted(r for r in self.endpoint_regions.values() if partition_of(r) is None)
            if unknown:
                raise ValueError(f"endpointRegions: not AWS regions: {unknown}")
            for endpoint in self.endpoints:
                try:
                    https_url(endpoint)
                except ValueError:
                    raise ValueError(f"openai endpoint {endpoint!r} must be an https:// URL with a host") from None
        return self
