"""``agent-infra:workflow``: the limits of the agent loop (steps, the Express turn's
timeout, approvals, the Standard task) and the state machines' logging."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from components.config.base import REST_INTEGRATION_TIMEOUT_SECONDS, ConfigModel


class WorkflowConfig(ConfigModel):
    max_steps: int = Field(8, ge=1, le=50, description="Model calls per turn or task before it stops with an error.")
    express_timeout_seconds: int = Field(
        25,
        ge=1,
        le=300,
        description=(
            f"Timeout of the Express turn, REST and WebSocket alike: below {REST_INTEGRATION_TIMEOUT_SECONDS}"
            " (a REST turn is answered synchronously, and API Gateway waits that long at most; the Express limit"
            " is 300). Longer work belongs in a task."
        ),
    )
    approval_timeout_hours: int = Field(
        24, ge=1, le=8760, description="How long a tool call waits for a human decision."
    )
    task_timeout_hours: int = Field(168, ge=1, le=8760, description="Timeout of a whole Standard task.")
    log_level: Literal["ALL", "ERROR", "FATAL", "OFF"] = Field("ERROR", description="Step Functions log level.")
    log_execution_data: bool = Field(
        False, description="Include inputs and outputs in Step Functions logs (keep it off in prod)."
    )

    @field_validator("express_timeout_seconds")
    @classmethod
    def _rest_turn_answers_in_time(cls, value: int) -> int:
        # API Gateway calls StartSyncExecution on this machine for a REST turn: a turn that
        # outlived the integration's wait would get API Gateway's own 504 while it went on; one
        # that times out before it gets the turn template's 504 and stops.
        if value >= REST_INTEGRATION_TIMEOUT_SECONDS:
            raise ValueError(
                f"must be below {REST_INTEGRATION_TIMEOUT_SECONDS}: a REST turn runs synchronously on the Express"
                f" turn (StartSyncExecution) and API Gateway waits {REST_INTEGRATION_TIMEOUT_SECONDS} s at most for a"
                " REST integration; past that the caller gets API Gateway's own 504 while the turn goes on. Longer"
                " work belongs in a task (POST /v1/tasks)"
            )
        return value

    @model_validator(mode="after")
    def _approval_fits_in_task(self) -> WorkflowConfig:
        if self.approval_timeout_hours >= self.task_timeout_hours:
            raise ValueError(
                f"approvalTimeoutHours {self.approval_timeout_hours} must be below taskTimeoutHours {self.task_timeout_hours}"
            )
        return self
