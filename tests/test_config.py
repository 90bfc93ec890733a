"""The stack config model: every bad value stops with a message naming key, value and what is allowed."""

from __future__ import annotations

import copy

import pytest

from components.config import (
    LOG_RETENTION_DAYS,
    StackConfig,
    StackConfigError,
    load_stack_config,
    parse_stack_config,
)
from local.pulumi_mocks import stack_config

VALID = {
    "regions": ["us-east-1", "eu-west-1"],
    "llm": {"provider": "bedrock", "model": "anthropic.claude-test"},
    "tools": [{"name": "calculator"}, {"name": "create_ticket", "requiresApproval": True, "compensable": True}],
    "api": {"auth": {"issuer": "https://auth.example.com/", "audience": "agents"}},
}


def with_change(path: str, value):
    raw = copy.deepcopy(VALID)
    target = raw
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target.setdefault(part, {})
    last = parts[-1]
    if last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return raw


def error_of(raw) -> str:
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config(raw)
    return str(caught.value)


def test_valid_config_gets_safe_defaults():
    config = parse_stack_config(VALID)
    assert config.home_region == "us-east-1"
    assert config.partition == "aws"
    assert config.state.deletion_protection is True
    assert config.state.pitr_recovery_days == 35
    assert config.state.strong_consistency is False
    assert config.budget.thresholds == [50, 80]
    assert config.workflow.max_steps == 8
    assert config.tool("calculator").requires_approval is False
    assert config.tool("create_ticket").compensable is True


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_stack_configs_are_valid(stack):
    raw = {k.split(":", 1)[1]: v for k, v in stack_config(stack).items() if k.startswith("agent-infra:")}
    config = parse_stack_config(raw)
    assert len(config.regions) == (2 if stack == "dev" else 3)
    assert config.state.deletion_protection is (stack == "prod")


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "regions",
            ["us-east-1", "us-east-9"],
            "agent-infra:regions = ['us-east-1', 'us-east-9']: us-east-9 is not an AWS region",
        ),
        (
            "regions",
            ["us-east-1", "us-east-1"],
            "agent-infra:regions = ['us-east-1', 'us-east-1']: lists us-east-1 more than once",
        ),
        ("regions", [], "agent-infra:regions = []: List should have at least 1 item"),
        ("regions", ["us-east-1", "cn-north-1"], "spans partitions ['aws', 'aws-cn']"),
        (
            "tools",
            [{"name": "calculator"}, {"name": "calculator"}],
            "agent-infra:tools = [{'name': 'calculator'}, {'name': 'calculator'}]: names tool calculator more than once",
        ),
        ("tools.0.name", "Calc-1", "agent-infra:tools[0].name = 'Calc-1': must be a lower-case identifier"),
        ("tools.0.name", "import", "agent-infra:tools[0].name = 'import': must be a lower-case identifier"),
        ("tools.0.name", "1calc", "agent-infra:tools[0].name = '1calc': must be a lower-case identifier"),
        ("tools.0.memoryMb", 0, "agent-infra:tools[0].memoryMb = 0: Input should be greater than or equal to 128"),
        (
            "tools.0.timeoutSeconds",
            -5,
            "agent-infra:tools[0].timeoutSeconds = -5: Input should be greater than or equal to 1",
        ),
        ("api.rateLimit", 0, "agent-infra:api.rateLimit = 0: Input should be greater than 0"),
        ("api.burstLimit", -1, "agent-infra:api.burstLimit = -1: Input should be greater than 0"),
        ("api.quotaPerDay", 0, "agent-infra:api.quotaPerDay = 0: Input should be greater than 0"),
        ("workflow", {"maxSteps": 0}, "agent-infra:workflow.maxSteps = 0: Input should be greater than or equal to 1"),
        (
            "workflow",
            {"expressTimeoutSeconds": 301},
            "agent-infra:workflow.expressTimeoutSeconds = 301: Input should be less than or equal to 300",
        ),
        (
            "workflow",
            {"expressTimeoutSeconds": 29},
            "agent-infra:workflow.expressTimeoutSeconds = 29: must be below 29: a REST turn runs synchronously",
        ),
        ("state", {"ttlDays": -1}, "agent-infra:state.ttlDays = -1: Input should be greater than or equal to 1"),
        ("budget", {"monthlyUsd": -10}, "agent-infra:budget.monthlyUsd = -10: Input should be greater than 0"),
        (
            "budget",
            {"thresholds": [50, 120]},
            "agent-infra:budget.thresholds[1] = 120: Input should be less than or equal to 100",
        ),
        (
            "budget",
            {"thresholds": [0]},
            "agent-infra:budget.thresholds[0] = 0: Input should be greater than or equal to 1",
        ),
        ("budget", {"thresholds": [50, 50]}, "agent-infra:budget.thresholds = [50, 50]: lists a threshold twice"),
        (
            "observability",
            {"alarmEmail": "oncall-at-example"},
            "agent-infra:observability.alarmEmail = 'oncall-at-example': value is not a valid email address",
        ),
        (
            "observability",
            {"logRetentionDays": 10},
            "agent-infra:observability.logRetentionDays = 10: must be one of 1, 3, 5, 7, 14, 30",
        ),
        ("llm.provider", "anthropic", "agent-infra:llm.provider = 'anthropic': Input should be 'bedrock' or 'openai'"),
        ("llm.endpoints", ["moon-east-1"], "bedrock endpoints must be AWS regions; not regions: ['moon-east-1']"),
        (
            "api.auth.issuer",
            "http://auth.example.com",
            "agent-infra:api.auth.issuer = 'http://auth.example.com': must be an https:// URL",
        ),
        ("api.burstLimit", 10, "burstLimit 10 is below rateLimit 50"),
        ("domain", {"zone": "not a zone"}, "agent-infra:domain.zone = 'not a zone': must be a DNS zone name"),
        ("api.rateLimt", 5, "agent-infra:api.rateLimt = 5: unknown key"),
        (
            "tools.0.name",
            "weather",
            "no handler module for weather (handlers/tools/<name>.py); tools available: calculator, create_ticket",
        ),
        (
            "compute",
            {"llmTimeoutSeconds": 60, "streamTimeoutSeconds": 30},
            "llmTimeoutSeconds 60 must be below streamTimeoutSeconds 30",
        ),
        (
            "compute",
            {"maxTokens": 16_000},
            "agent-infra:compute.maxTokens = 16000: Input should be less than or equal to 8192",
        ),
        (
            "compute",
            {"provisionedConcurrency": {"agent-stepp": 2}},
            "compute.provisionedConcurrency names no function of this stack: ['agent-stepp']",
        ),
        (
            "llm",
            {"provider": "bedrock", "model": "anthropic.claude-x-v1:0", "endpoints": ["us-east-1"]},
            "is a foundation model, and each region's state machine calls Bedrock in its own region; ['eu-west-1']",
        ),
    ],
)
def test_bad_value_names_key_value_and_what_is_allowed(path, value, expected):
    assert expected in error_of(with_change(path, value))


def test_unknown_region_message_lists_the_allowed_regions():
    message = error_of(with_change("regions", ["us-east-1", "us-east-9"]))
    assert "regions of the aws partition:" in message
    assert "eu-west-1" in message and "ap-southeast-2" in message


def test_missing_required_keys_are_named():
    message = error_of({"regions": ["us-east-1"]})
    assert "agent-infra:llm: is required" in message
    assert "agent-infra:api: is required" in message


def test_every_problem_is_reported_in_one_message():
    raw = with_change("regions", [])
    raw["budget"] = {"thresholds": [0]}
    message = error_of(raw)
    assert message.startswith("invalid stack config:")
    assert "agent-infra:regions" in message and "agent-infra:budget.thresholds[0]" in message


def test_openai_provider_needs_https_endpoints_and_keeps_the_key_secret():
    ok = parse_stack_config(
        with_change(
            "llm",
            {
                "provider": "openai",
                "model": "gpt-x",
                "endpoints": ["https://llm.example.com/v1"],
                "apiKey": "sk-live-123",
            },
        )
    )
    assert ok.llm.api_key.get_secret_value() == "sk-live-123"
    assert "sk-live-123" not in repr(ok) and "sk-live-123" not in str(ok.model_dump())
    message = error_of(
        with_change(
            "llm", {"provider": "openai", "model": "gpt-x", "endpoints": ["http://plain"], "apiKey": "sk-live-123"}
        )
    )
    assert "must be an https:// URL" in message
    assert "sk-live-123" not in message


def test_openai_model_calls_fit_in_the_http_tasks_60_seconds():
    """The HTTP Task times out at 60 s whatever its TimeoutSeconds
    (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html)."""
    raw = with_change(
        "llm", {"provider": "openai", "model": "m", "endpoints": ["https://llm.example.com/v1"], "apiKey": "sk-1"}
    )
    raw["compute"] = {"llmTimeoutSeconds": 90, "streamTimeoutSeconds": 120}
    message = error_of(raw)
    assert "compute.llmTimeoutSeconds 90 is over 60" in message and "HTTP Task" in message
    assert "sk-1" not in message
    raw["compute"]["llmTimeoutSeconds"] = 60
    assert parse_stack_config(raw).compute.llm_timeout_seconds == 60
    raw["llm"] = VALID["llm"]
    raw["compute"]["llmTimeoutSeconds"] = 90
    assert parse_stack_config(raw).compute.llm_timeout_seconds == 90, "bedrock's SDK task has no such limit"


def test_bad_api_key_value_is_never_echoed():
    message = error_of(
        with_change("llm", {"provider": "openai", "model": "m", "endpoints": ["https://x.example"], "apiKey": 12345678})
    )
    assert "12345678" not in message
    assert "agent-infra:llm.apiKey = '[secret]'" in message


def test_bedrock_rejects_an_api_key():
    assert "apiKey is only for provider openai" in error_of(with_change("llm.apiKey", "sk-1"))


def test_strong_consistency_needs_three_regions_of_one_set():
    raw = with_change("state", {"strongConsistency": True})
    assert "state.strongConsistency needs exactly 3 regions from one region set" in error_of(raw)
    raw["regions"] = ["us-east-1", "us-east-2", "us-west-2"]
    message = error_of(raw)
    assert "not supported by this store yet" in message and "TTL" in message and "TransactWriteItems" in message


def test_evacuated_regions_must_be_stack_regions_and_leave_one():
    assert "state.evacuatedRegions names regions that are not in regions: ['us-west-2']" in error_of(
        with_change("state", {"evacuatedRegions": ["us-west-2"]})
    )
    assert "names every region" in error_of(with_change("state", {"evacuatedRegions": ["us-east-1", "eu-west-1"]}))
    assert parse_stack_config(with_change("state", {"evacuatedRegions": ["us-east-1"]})).state.evacuated_regions == [
        "us-east-1"
    ]


def test_load_reads_each_top_level_key_once_and_skips_unset():
    asked = []

    def read(key):
        asked.append(key)
        return VALID.get(key)

    config = load_stack_config(read)
    assert isinstance(config, StackConfig)
    assert sorted(asked) == sorted(f.alias for f in StackConfig.model_fields.values())
    assert len(asked) == len(set(asked))


def test_log_retention_values_are_cloudwatchs():
    for days in LOG_RETENTION_DAYS:
        assert parse_stack_config(with_change("observability", {"logRetentionDays": days}))
