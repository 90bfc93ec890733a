"""The stack configuration (namespace ``agent-infra``): pydantic models, read once.

Pure: no Pulumi import. ``__main__.py`` hands :func:`load_stack_config` a function that reads
one key (``pulumi.Config().get_object``) and the names of every key of the stack; the local
stack and the tests hand it a dict's ``get``. A bad value raises :class:`StackConfigError`
whose message names the key, the value and what is allowed, one line per problem. A key the
program does not read is never silently ignored (:func:`check_config_keys`): in the
``agent-infra`` namespace it is an error with a "did you mean", in another namespace a warning.

One module per section of the config (``llm``, ``tools``, ``api`` with ``domain``,
``compute``, ``workflow``, ``state``, ``observability`` with ``budget`` and
``faultInjection``), ``stack`` for the whole and the checks that span sections; ``errors``
words a problem, ``keys`` checks the stack's keys, ``load`` reads and validates. The field
descriptions are the config reference: ``python -m components.config`` prints it as the
Markdown table docs/configuration.md carries (``reference``; a test keeps the two in step).

The names the program, the components and the tests use are importable from here.
"""

from components.config.api import ApiConfig, AuthConfig, DomainConfig
from components.config.base import (
    HTTP_TASK_TIMEOUT_SECONDS,
    NAMESPACE,
    REST_INTEGRATION_TIMEOUT_SECONDS,
    StackConfigError,
    longest_region,
    partition_of,
    regions_by_partition,
)
from components.config.compute import PROVISIONABLE, ComputeConfig
from components.config.errors import format_errors
from components.config.keys import ConfigKeyCheck, check_config_keys
from components.config.llm import HISTORY_TOKENS, HISTORY_TOKENS_MAX, LlmConfig
from components.config.load import load_stack_config, parse_stack_config
from components.config.observability import LOG_RETENTION_DAYS, BudgetConfig, FaultInjectionConfig, ObservabilityConfig
from components.config.reference import README_END, README_START, config_reference_markdown, with_reference
from components.config.stack import StackConfig
from components.config.state import STRONG_CONSISTENCY_REGION_SETS, StateConfig
from components.config.tools import (
    LONG_RUNTIMES,
    MAX_TOOL_NAME,
    RUNTIMES,
    ToolConfig,
    declared_runtime,
    fargate_size_problem,
    tool_modules,
)
from components.config.workflow import WorkflowConfig

__all__ = [
    "HISTORY_TOKENS",
    "HISTORY_TOKENS_MAX",
    "HTTP_TASK_TIMEOUT_SECONDS",
    "LOG_RETENTION_DAYS",
    "LONG_RUNTIMES",
    "MAX_TOOL_NAME",
    "NAMESPACE",
    "PROVISIONABLE",
    "README_END",
    "README_START",
    "REST_INTEGRATION_TIMEOUT_SECONDS",
    "RUNTIMES",
    "STRONG_CONSISTENCY_REGION_SETS",
    "ApiConfig",
    "AuthConfig",
    "BudgetConfig",
    "ComputeConfig",
    "ConfigKeyCheck",
    "DomainConfig",
    "FaultInjectionConfig",
    "LlmConfig",
    "ObservabilityConfig",
    "StackConfig",
    "StackConfigError",
    "StateConfig",
    "ToolConfig",
    "WorkflowConfig",
    "check_config_keys",
    "config_reference_markdown",
    "declared_runtime",
    "fargate_size_problem",
    "format_errors",
    "load_stack_config",
    "longest_region",
    "parse_stack_config",
    "partition_of",
    "regions_by_partition",
    "tool_modules",
    "with_reference",
]
