"""``agent-infra:*``: the whole stack config, its sections, and the checks that span them
(regions against partitions, tools against their modules, provisioned concurrency against
the functions, the model's timeout against the provider, consistency against regions)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from components.config.api import ApiConfig, DomainConfig
from components.config.base import HTTP_TASK_TIMEOUT_SECONDS, ConfigModel, partition_of, regions_by_partition
from components.config.compute import PROVISIONABLE, ComputeConfig
from components.config.llm import LlmConfig
from components.config.observability import BudgetConfig, FaultInjectionConfig, ObservabilityConfig
from components.config.state import STRONG_CONSISTENCY_REGION_SETS, StateConfig
from components.config.tools import ToolConfig, check_tools
from components.config.workflow import WorkflowConfig
from components.policies import INFERENCE_PROFILE_PREFIXES


class StackConfig(ConfigModel):
    """Every ``agent-infra:*`` key of a stack."""

    regions: list[str] = Field(
        min_length=1, description="AWS regions to deploy to; the first is the home region of the global table."
    )
    llm: LlmConfig = Field(description="The model and where it is served.")
    tools: list[ToolConfig] = Field(default_factory=list, description="The agent's tools, one Lambda each.")
    api: ApiConfig = Field(description="Throttling, quotas, body limit and JWT auth of the APIs.")
    domain: DomainConfig | None = Field(
        None, description="Custom domain; enables certificates, latency routing and health checks."
    )
    compute: ComputeConfig = Field(
        default_factory=ComputeConfig, description="Sizes and limits of the router and agent-step Lambdas."
    )
    workflow: WorkflowConfig = Field(default_factory=WorkflowConfig, description="Limits of the agent loop.")
    state: StateConfig = Field(default_factory=StateConfig, description="The DynamoDB global table.")
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig, description="Alarms and logs.")
    fault_injection: FaultInjectionConfig = Field(
        default_factory=FaultInjectionConfig, description="The failover drill's experiments on AWS (off by default)."
    )
    budget: BudgetConfig = Field(default_factory=BudgetConfig, description="The monthly budget and its alerts.")
    tags: dict[str, str] = Field(default_factory=dict, description="Extra cost-allocation tags on every resource.")

    @field_validator("regions")
    @classmethod
    def _known_distinct_regions(cls, value: list[str]) -> list[str]:
        duplicates = sorted({r for r in value if value.count(r) > 1})
        if duplicates:
            raise ValueError(f"lists {', '.join(duplicates)} more than once; each region may appear once")
        unknown = [r for r in value if partition_of(r) is None]
        if unknown:
            known = ", ".join(regions_by_partition()["aws"])
            raise ValueError(
                f"{', '.join(unknown)} is not an AWS region DynamoDB runs in; regions of the aws partition: {known}"
            )
        partitions = {partition_of(r) for r in value}
        if len(partitions) > 1:
            raise ValueError(f"spans partitions {sorted(partitions)}; a global table stays within one partition")
        return value

    @field_validator("tools")
    @classmethod
    def _distinct_tools(cls, value: list[ToolConfig]) -> list[ToolConfig]:
        return check_tools(value)

    @model_validator(mode="after")
    def _cross_checks(self) -> StackConfig:
        from components.naming import function_key

        known = {*PROVISIONABLE, *(function_key(t.name) for t in self.tools)}
        unknown = sorted(set(self.compute.provisioned_concurrency) - known)
        if unknown:
            raise ValueError(
                f"compute.provisionedConcurrency names no function of this stack: {unknown}; functions: {sorted(known)}"
            )
        if self.llm.provider == "openai" and self.compute.llm_timeout_seconds > HTTP_TASK_TIMEOUT_SECONDS:
            raise ValueError(
                f"compute.llmTimeoutSeconds {self.compute.llm_timeout_seconds:g} is over {HTTP_TASK_TIMEOUT_SECONDS}:"
                " with llm.provider openai the state machines call the model with Step Functions' HTTP Task, which"
                f" gives up after {HTTP_TASK_TIMEOUT_SECONDS} s whatever the definition says; set it to at most"
                f" {HTTP_TASK_TIMEOUT_SECONDS}"
            )
        if self.llm.provider == "bedrock" and not self.llm.model.startswith(INFERENCE_PROFILE_PREFIXES):
            # The state machine calls Converse in its own region.
            served = set(self.llm.endpoints) or set(self.regions)
            missing = [r for r in self.regions if r not in served]
            if missing:
                raise ValueError(
                    f"llm.model {self.llm.model!r} is a foundation model, and each region's state machine calls"
                    f" Bedrock in its own region; {missing} are not in llm.endpoints. Use a cross-region inference"
                    " profile id (us., eu., apac., global.) or serve the model in every region."
                )
        if self.state.strong_consistency:
            chosen = set(self.regions)
            if len(chosen) != 3 or not any(chosen <= s for s in STRONG_CONSISTENCY_REGION_SETS):
                sets = "; ".join(", ".join(sorted(s)) for s in STRONG_CONSISTENCY_REGION_SETS)
                raise ValueError(
                    f"state.strongConsistency needs exactly 3 regions from one region set ({sets}); got {self.regions}"
                )
            # "Time to Live (TTL) is not supported for MRSC global tables" and MRSC tables "do not
            # support transaction operations"
            # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_HowItWorks.html).
            raise ValueError(
                "state.strongConsistency (MRSC) is not supported by this store yet: MRSC global tables support"
                " neither TTL (every item here expires) nor TransactWriteItems (a session's first step, an"
                " Idempotency-Key claim and an approval decision are transactions); see"
                " docs/multi-region.md for what MRSC would change"
            )
        unknown = sorted(set(self.state.evacuated_regions) - set(self.regions))
        if unknown:
            raise ValueError(f"state.evacuatedRegions names regions that are not in regions: {unknown}")
        if self.state.evacuated_regions and set(self.state.evacuated_regions) >= set(self.regions):
            raise ValueError("state.evacuatedRegions names every region: at least one must serve the sessions")
        return self

    @property
    def home_region(self) -> str:
        """The first region: where the global table is created and owned."""
        return self.regions[0]

    @property
    def partition(self) -> str:
        return partition_of(self.home_region) or "aws"

    def tool(self, name: str) -> ToolConfig:
        for tool in self.tools:
            if tool.name == name:
                return tool
        raise KeyError(name)
