"""``agent-infra:api`` and ``agent-infra:domain``: the APIs' throttling, quotas, body limit,
JWT auth and clients, and the custom domain they are served under."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from components.config.base import ConfigModel, https_url

_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class AuthConfig(ConfigModel):
    issuer: str = Field(description="OIDC issuer URL (`https://`) whose JWKS signs the callers' JWTs.")
    audience: str = Field(min_length=1, description="Expected `aud` claim of the JWTs.")

    @field_validator("issuer")
    @classmethod
    def _issuer_https(cls, value: str) -> str:
        return https_url(value)


class ApiConfig(ConfigModel):
    rate_limit: float = Field(50, gt=0, le=10_000, description="Stage steady-state requests per second.")
    burst_limit: int = Field(100, gt=0, le=5_000, description="Stage burst, requests.")
    quota_per_day: int = Field(10_000, gt=0, description="Requests per API key per day (usage plan).")
    max_body_kb: int = Field(64, gt=0, le=10_240, description="Largest request body accepted, KB.")
    auth: AuthConfig = Field(description="JWT issuer and audience.")
    clients: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]] = Field(
        default_factory=lambda: ["default"],
        min_length=1,
        description="API clients: one API key each in the usage plan.",
    )
    execution_log_level: Literal["ERROR", "INFO", "OFF"] = Field(
        "ERROR", description="API Gateway execution logging (never with data traces)."
    )
    manage_account_logging: bool = Field(
        False,
        description="Set API Gateway's account-wide CloudWatch role in each region of the stack. The account's bootstrap sets it; only in an account without it, exactly one stack sets it (docs/deploy.md, \"API Gateway's account logging\"); stage logs need it.",
    )

    @model_validator(mode="after")
    def _burst_covers_rate(self) -> ApiConfig:
        if self.burst_limit < self.rate_limit:
            raise ValueError(
                f"burstLimit {self.burst_limit} is below rateLimit {self.rate_limit}: the burst must hold at least one second of traffic"
            )
        return self


class DomainConfig(ConfigModel):
    zone: str = Field(description="Route 53 hosted zone name, e.g. `agents.example.com`.")
    api_host: str = Field("api", description="Host label of the REST API under the zone.")
    ws_host: str = Field("ws", description="Host label of the WebSocket API.")
    llm_host: str = Field("llm", description="Host label of the LLM gateway records (provider `openai`).")

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        labels = value.rstrip(".").lower().split(".")
        if len(labels) < 2 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise ValueError("must be a DNS zone name such as agents.example.com")
        return ".".join(labels)

    @field_validator("api_host", "ws_host", "llm_host")
    @classmethod
    def _label(cls, value: str) -> str:
        if not _HOST_LABEL.fullmatch(value):
            raise ValueError("must be one DNS label: letters, digits and '-', at most 63")
        return value
