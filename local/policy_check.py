"""Run the policy pack against the real program under Pulumi mocks, as ``pulumi preview
--policy-pack policy`` would, without the Pulumi CLI or AWS.

    python -m local.policy_check prod [--domain agents.example.com]

Each resource the program registers is handed to every resource policy the way the engine
hands it over (pulumi/pulumi ``pkg/resource/deploy/step_generator.go``): its inputs as the
provider's Check returns them, its options (``protect``) and its provider's inputs. The one
part of Check that matters to the pack is reproduced: the AWS provider merges its
``defaultTags`` into ``tagsAll`` for every resource type that has tags (pulumi-aws
``provider/tags.go``), which the Python SDK shows as a ``tags_all`` output on the class.
The stack policy gets every resource's outputs, as ``AnalyzeStack`` does after an update.
Exit status 1 when anything is refused.
"""

from __future__ import annotations

import argparse
import json
import keyword
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import pulumi_aws
from pulumi_policy import (
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy

from local.pulumi_mocks import PROJECT, ProgramRun, RecordedResource, provider_name, run_program, stack_config
from policy.pack import build_policies


@dataclass(frozen=True)
class Violation:
    policy: str
    resource: str
    message: str

    def __str__(self) -> str:
        return f"[{self.policy}] {self.resource}: {self.message}"


@cache
def has_tags(resource_type: str) -> bool:
    """Whether pulumi-aws gives ``resource_type`` a ``tagsAll`` (its Check fills it in)."""
    if not resource_type.startswith("aws:"):
        return False
    _, module_path, class_name = resource_type.split(":")
    module_name = module_path.split("/")[0]
    module = (
        pulumi_aws
        if module_name == "index"
        else getattr(pulumi_aws, module_name + "_" * keyword.iskeyword(module_name))
    )
    return isinstance(getattr(getattr(module, class_name, None), "tags_all", None), property)


def _object(value: Any) -> dict:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def checked_inputs(resource: RecordedResource, default_tags: dict[str, str]) -> dict[str, Any]:
    inputs = dict(resource.inputs)
    if has_tags(resource.typ):
        inputs["tagsAll"] = {**default_tags, **(inputs.get("tags") or {})}
    return inputs


def urn(stack: str, resource: RecordedResource) -> str:
    return f"urn:pulumi:{stack}::{PROJECT}::{resource.typ}::{resource.name}"


def _options(run: ProgramRun, resource: RecordedResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=run.protected.get(resource.name, False),
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
    )


def analyze(run: ProgramRun, stack: str, policies: Iterable[Policy] | None = None) -> list[Violation]:
    """Every violation the pack reports for ``run``, resource policies then stack policies."""
    policies = list(policies if policies is not None else build_policies())
    providers = {r.name: r for r in run.resources if r.typ.startswith("pulumi:providers:")}

    def provider_of(resource: RecordedResource) -> PolicyProviderResource | None:
        if not resource.provider:
            return None
        provider = providers[provider_name(resource.provider)]
        return PolicyProviderResource(provider.typ, provider.inputs, urn(stack, provider), provider.name)

    def default_tags(resource: RecordedResource) -> dict[str, str]:
        provider = provider_of(resource)
        return _object(_object(provider.props.get("defaultTags")).get("tags")) if provider else {}

    violations: list[Violation] = []

    def reporter(policy: Policy, default: str) -> Callable[[str, str | None], None]:
        return lambda message, where=None: violations.append(Violation(policy.name, where or default, message))

    for resource in run.resources:
        args = ResourceValidationArgs(
            resource.typ,
            unknown_checking_proxy(checked_inputs(resource, default_tags(resource))),
            urn(stack, resource),
            resource.name,
            _options(run, resource),
            provider_of(resource),
        )
        for policy in policies:
            if isinstance(policy, ResourceValidationPolicy):
                policy.validate(args, reporter(policy, args.urn))
    stack_resources = [
        PolicyResource(
            r.typ,
            unknown_checking_proxy(
                checked_inputs(RecordedResource(**{**r.__dict__, "inputs": r.state}), default_tags(r))
            ),
            urn(stack, r),
            r.name,
            _options(run, r),
            provider_of(r),
            None,
            [],
            {},
        )
        for r in run.resources
    ]
    for policy in policies:
        if isinstance(policy, StackValidationPolicy):
            policy.validate(StackValidationArgs(stack_resources), reporter(policy, f"urn:pulumi:{stack}"))
    return violations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack", nargs="?", default="dev")
    parser.add_argument("--domain", help="also configure agent-infra:domain with this zone")
    parser.add_argument("--today", type=date.fromisoformat, help="the date runtimes are judged on (YYYY-MM-DD)")
    args = parser.parse_args(argv)
    config = stack_config(args.stack)
    if args.domain:
        config["agent-infra:domain"] = {"zone": args.domain}
    run = run_program(config, args.stack)
    today = args.today
    violations = analyze(run, args.stack, build_policies((lambda: today) if today else date.today))
    for violation in violations:
        print(violation)
    print(f"stack {args.stack}: {len(run.resources)} resources, {len(violations)} violations (offline, under mocks)")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
