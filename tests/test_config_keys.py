"""Keys the program does not read: a typo in the stack config is an error or a warning, never silence."""

from __future__ import annotations

import json
import logging

import pulumi
import pytest

from components.config import (
    StackConfig,
    StackConfigError,
    check_config_keys,
    load_stack_config,
)
from local import preview
from local.pulumi_mocks import run_program, stack_config

SHIPPED = ["agent-infra:regions", "agent-infra:llm", "agent-infra:api", "pulumi:disable-default-providers"]


@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        ("agent-infra:obsevability", "agent-infra:obsevability: unknown key; did you mean agent-infra:observability?"),
        ("agent-infra:regoins", "agent-infra:regoins: unknown key; did you mean agent-infra:regions?"),
    ],
)
def test_an_unknown_key_of_the_namespace_is_an_error_naming_the_key_meant(typo, expected):
    check = check_config_keys([*SHIPPED, typo])
    assert check.errors == (expected,)
    assert check.warnings == ()


def test_a_misspelled_namespace_is_a_warning_naming_the_key_meant():
    check = check_config_keys([*SHIPPED, "agnet-infra:budget"])
    assert check.errors == ()
    (warning,) = check.warnings
    assert warning.startswith("agnet-infra:budget: ignored: this program reads no agnet-infra:* config")
    assert warning.endswith("did you mean agent-infra:budget?")


def test_a_misspelled_namespace_and_key_suggest_the_closest_key():
    (warning,) = check_config_keys(["agent_infra:budgte"]).warnings
    assert warning.endswith("did you mean agent-infra:budget?")


def test_aws_region_is_a_warning_that_the_explicit_provider_ignores_it():
    check = check_config_keys([*SHIPPED, "aws:region"])
    assert check.errors == ()
    assert check.warnings == (
        "aws:region: ignored: this program's AWS provider is explicit and reads no aws:* stack config;"
        " the regions come from agent-infra:regions (the first is the home region)",
    )


def test_a_namespace_far_from_ours_gets_no_suggestion():
    (warning,) = check_config_keys(["random:length"]).warnings
    assert warning == "random:length: ignored: this program reads no random:* config"


def test_engine_keys_and_every_model_key_are_fine():
    keys = [f"agent-infra:{field.alias}" for field in StackConfig.model_fields.values()]
    check = check_config_keys([*keys, "pulumi:disable-default-providers", "pulumi:tags"])
    assert check.errors == () and check.warnings == ()


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_stacks_have_no_unknown_keys(stack):
    check = check_config_keys(stack_config(stack))
    assert check.errors == () and check.warnings == ()


def test_a_key_far_from_every_key_lists_the_keys():
    (error,) = check_config_keys(["agent-infra:zzz"]).errors
    assert error.startswith("agent-infra:zzz: unknown key; the agent-infra keys are regions, llm, tools, api,")


def test_a_key_path_written_as_a_key_says_to_nest_it():
    (error,) = check_config_keys(["agent-infra:llm.model"]).errors
    assert "a key path is not a key: nest the value under agent-infra:llm" in error


def test_an_unknown_nested_key_names_the_key_meant():
    raw = {
        "regions": ["us-east-1"],
        "llm": {"model": "m"},
        "api": {"rateLimt": 5, "auth": {"issuer": "https://auth.example.com/", "audience": "a"}},
    }
    with pytest.raises(StackConfigError) as caught:
        load_stack_config(raw.get)
    assert "agent-infra:api.rateLimt = 5: unknown key; did you mean agent-infra:api.rateLimit?" in str(caught.value)


def test_key_errors_and_value_errors_come_in_one_message():
    raw = {"regions": [], "llm": {"model": "m"}, "api": {"auth": {"issuer": "https://a.example/", "audience": "a"}}}
    with pytest.raises(StackConfigError) as caught:
        load_stack_config(raw.get, keys=[f"agent-infra:{k}" for k in raw] + ["agent-infra:obsevability"])
    message = str(caught.value)
    assert message.startswith("invalid stack config:\n")
    assert "agent-infra:obsevability: unknown key; did you mean agent-infra:observability?" in message
    assert "agent-infra:regions = []: List should have at least 1 item" in message


# The real program under mocks: the keys reach it the way the Pulumi runtime hands them over.


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("agent-infra:obsevability", "agent-infra:observability"), ("agent-infra:regoins", "agent-infra:regions")],
)
def test_the_program_stops_on_an_unknown_key(typo, meant):
    config = stack_config("dev")
    config[typo] = config.get(meant, {})
    with pytest.raises(pulumi.RunError) as caught:
        run_program(config, "typo")
    assert f"{typo}: unknown key; did you mean {meant}?" in str(caught.value)


def test_the_program_reads_keys_from_pulumi_config_as_the_language_host_passes_them(monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"agent-infra:obsevability": "{}"}))
    with pytest.raises(pulumi.RunError) as caught:
        run_program(stack_config("dev"), "env")
    assert "agent-infra:obsevability: unknown key; did you mean agent-infra:observability?" in str(caught.value)


def test_keys_of_other_namespaces_are_warned_about_and_really_ignored(caplog):
    config = stack_config("dev")
    config["aws:region"] = "eu-central-1"
    config["agnet-infra:budget"] = {"monthlyUsd": 5}
    with caplog.at_level(logging.WARNING):
        run = run_program(config, "warned")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(w.startswith("aws:region: ignored: this program's AWS provider is explicit") for w in warnings)
    assert any(w.startswith("agnet-infra:budget: ignored") and "agent-infra:budget?" in w for w in warnings)
    # What the warnings say is true: neither value changed anything.
    (provider,) = run.of_type("pulumi:providers:aws")
    assert provider.inputs["region"] == "us-east-1"
    (budget,) = run.of_type("aws:budgets/budget:Budget")
    assert budget.inputs["limitAmount"] == f"{stack_config('dev')['agent-infra:budget']['monthlyUsd']:.2f}"


def test_preview_exits_2_with_the_message_on_an_unknown_key(monkeypatch, capsys):
    config = stack_config("dev")
    config["agent-infra:obsevability"] = {"logRetentionDays": 7}
    monkeypatch.setattr(preview, "stack_config", lambda stack: config)
    assert preview.main(["dev"]) == 2
    captured = capsys.readouterr()
    assert "agent-infra:obsevability: unknown key; did you mean agent-infra:observability?" in captured.err
    assert captured.out == ""
