"""``agent-infra:observability``, ``agent-infra:budget`` and ``agent-infra:faultInjection``:
what watches the stack (alarms, traces, logs, the monthly budget) and the failover drill's
experiments that test it on AWS."""

from __future__ import annotations

from typing import Annotated

from pydantic import EmailStr, Field, field_validator

from components.config.base import ConfigModel

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


class ObservabilityConfig(ConfigModel):
    alarm_email: EmailStr | None = Field(None, description="Address subscribed to the alarm topic.")
    trace_sample_rate: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Share of requests X-Ray traces, edge to tools (sampling rules; X-Ray bills each trace recorded).",
    )
    log_retention_days: int = Field(30, description="CloudWatch Logs retention; one of the values CloudWatch accepts.")

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}")
        return value


Percent = Annotated[int, Field(ge=1, le=100)]


class BudgetConfig(ConfigModel):
    monthly_usd: float = Field(100, gt=0, description="Monthly cost budget in USD.")
    thresholds: list[Percent] = Field(
        default_factory=lambda: [50, 80], min_length=1, description="Alert at these percents of the budget (1..100)."
    )

    @field_validator("thresholds")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("lists a threshold twice")
        return sorted(value)


class FaultInjectionConfig(ConfigModel):
    enabled: bool = Field(
        False,
        description=(
            "An AWS FIS experiment template per region that pauses the table's replication there and makes its"
            " functions fail (the failover drill on AWS; docs/multi-region.md). Adds the FIS extension"
            " layer to every function."
        ),
    )
    duration_minutes: int = Field(
        10, ge=1, le=60, description="How long an experiment's faults last (replication resumes after it)."
    )
