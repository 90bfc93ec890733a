"""The policies of the agent-infra pack (CrossGuard, ``pulumi-policy``), built from ``policy.rules``.

What a policy sees (pulumi/pulumi ``pkg/resource/deploy/step_generator.go``, the
``plugin.AnalyzerResource`` it sends): a resource's inputs after its provider's Check, its
options (``protect`` among them, as ``args.opts.protect``) and its provider's inputs. The AWS
provider's Check merges the provider's ``defaultTags`` into ``tagsAll`` for every resource
type that has tags (pulumi-aws ``provider/tags.go``, ``applyTags``), so that is where the
cost-allocation tags are read. A stack policy sees every resource's outputs after the update
(``AnalyzeStack``), which is how "the stack's own keys" is checked across resources.

A value still unknown during a preview (an ARN of a resource not yet created) makes the SDK
skip that policy for that resource with an advisory note; ``pulumi up`` runs it again with the
value known, before the resource is created, and a MANDATORY violation stops the update.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from typing import Any

from pulumi_policy import (
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy import rules

PACK_NAME = "agent-infra"

IAM_POLICY_TYPES = (
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/policy:Policy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)
# Where a managed policy is attached: (type, input holding one ARN or a list of them).
MANAGED_POLICY_INPUTS = {
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "policyArn",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": "policyArn",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment": "policyArn",
    "aws:iam/policyAttachment:PolicyAttachment": "policyArn",
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": "policyArns",
    "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive": "policyArns",
    "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive": "policyArns",
    "aws:iam/role:Role": "managedPolicyArns",
}


def stack_of(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::<type>::<name>`` → ``<stack>``."""
    return urn.split("::", 1)[0].split(":", 2)[2]


def _region(props: Mapping, provider_props: Mapping | None) -> str | None:
    return props.get("region") or (provider_props or {}).get("region")


def _provider_props(args: Any) -> Mapping:
    provider = getattr(args, "provider", None)
    return provider.props if provider is not None else {}


# --- IAM -------------------------------------------------------------------------------------


def _documents(resource_type: str, props: Mapping) -> list[tuple[str, Any, str]]:
    """(where, document, kind) of every policy document a resource holds; kind is
    ``identity``, ``trust`` or ``key``."""
    documents: list[tuple[str, Any, str]] = []
    if resource_type in IAM_POLICY_TYPES and props.get("policy"):
        documents.append(("policy", props["policy"], "identity"))
    elif resource_type == "aws:iam/role:Role":
        for index, inline in enumerate(props.get("inlinePolicies") or []):
            if inline.get("policy"):
                documents.append((f"inlinePolicies[{index}]", inline["policy"], "identity"))
        if props.get("assumeRolePolicy"):
            documents.append(("assumeRolePolicy", props["assumeRolePolicy"], "trust"))
    elif resource_type == "aws:kms/key:Key" and props.get("policy"):
        documents.append(("policy", props["policy"], "key"))
    return documents


def iam_problems(resource_type: str, props: Mapping) -> list[str]:
    """Every IAM statement names its resources; ``*`` only for actions without a resource
    type; ARN conditions use ArnLike/ArnEquals. Key policies name their key with ``*``;
    trust and key policies let in ``*`` only under a condition on the caller; an AWS managed
    policy is attached only from the allowed list."""
    problems = []
    for where, value, kind in _documents(resource_type, props):
        document = rules.policy_document(value)
        found = {
            "identity": rules.wildcard_problems,
            "key": lambda d: rules.key_policy_problems(d) + rules.principal_problems(d),
            "trust": rules.principal_problems,
        }[kind](document)
        problems += [f"{where}: {p}" for p in found + rules.arn_condition_problems(document)]
    key = MANAGED_POLICY_INPUTS.get(resource_type)
    attached = (props.get(key) if key else None) or []
    for arn in [attached] if isinstance(attached, str) else attached:
        problem = rules.managed_policy_problem(arn)
        if problem:
            problems.append(f"{key}: {problem}")
    return problems


def validate_iam(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for problem in iam_problems(args.resource_type, args.props):
        report(problem, None)


def validate_stack_principals(args: StackValidationArgs, report: ReportViolation) -> None:
    """Trust and key policies let in another account than the stack's only under a condition.
    The stack's account is the one its roles are created in (their ARNs, known after the
    update, as AnalyzeStack sees them)."""
    accounts = {
        rules.account_of(r.props.get("arn")) for r in args.resources if r.resource_type == "aws:iam/role:Role"
    } - {None}
    for resource in args.resources:
        for where, value, kind in _documents(resource.resource_type, resource.props):
            if kind == "identity":
                continue
            for problem in rules.foreign_account_problems(rules.policy_document(value), accounts):
                report(f"{resource.name} {where}: {problem}", resource.urn)


# --- encryption at rest ----------------------------------------------------------------------


def encryption_fields(resource_type: str, props: Mapping, region: str | None) -> Iterator[tuple[str, Any, str | None]]:
    """(what, key ARN it names, the region it must be in) for every store the pack encrypts."""
    if resource_type == "aws:dynamodb/table:Table":
        sse = props.get("serverSideEncryption") or {}
        yield "table", sse.get("kmsKeyArn") if sse.get("enabled") else None, region
        for replica in props.get("replicas") or []:
            yield f"replica in {replica.get('regionName')}", replica.get("kmsKeyArn"), replica.get("regionName")
    elif resource_type in ("aws:sqs/queue:Queue", "aws:sns/topic:Topic"):
        yield resource_type.rsplit(":", 1)[1].lower(), props.get("kmsMasterKeyId"), region
    elif resource_type == "aws:cloudwatch/logGroup:LogGroup":
        yield "log group", props.get("kmsKeyId"), region
    elif resource_type == "aws:secretsmanager/secret:Secret":
        yield "secret", props.get("kmsKeyId"), region
    elif resource_type == "aws:lambda/function:Function":
        variables = (props.get("environment") or {}).get("variables") or {}
        if variables:
            yield "environment variables", props.get("kmsKeyArn"), region


def validate_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    region = _region(args.props, _provider_props(args))
    for what, key, key_region in encryption_fields(args.resource_type, args.props, region):
        problem = rules.customer_key_problem(key, key_region, what)
        if problem:
            report(problem, None)


def validate_stack_keys(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every encrypted store names a key this stack manages, in the store's region."""
    keys = {r.props.get("arn"): r.props.get("region") for r in args.resources if r.resource_type == "aws:kms/key:Key"}
    for resource in args.resources:
        region = _region(resource.props, resource.provider.props if resource.provider else None)
        for what, key, key_region in encryption_fields(resource.resource_type, resource.props, region):
            if key and key not in keys:
                report(f"{what} of {resource.name} uses {key}, a key this stack does not manage", resource.urn)
            elif key and key_region and keys[key] != key_region:
                report(f"{what} of {resource.name} is in {key_region}, its key in {keys[key]}", resource.urn)


# --- API Gateway -----------------------------------------------------------------------------


def validate_tls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == "aws:apigateway/domainName:DomainName":
        policy = args.props.get("securityPolicy")
    elif args.resource_type == "aws:apigatewayv2/domainName:DomainName":
        policy = (args.props.get("domainNameConfiguration") or {}).get("securityPolicy")
    else:
        return
    if policy not in rules.TLS_SECURITY_POLICIES:
        report(f"custom domain security policy {policy!r}; allowed: {sorted(rules.TLS_SECURITY_POLICIES)}", None)


def validate_stage_logging(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in ("aws:apigateway/stage:Stage", "aws:apigatewayv2/stage:Stage"):
        return
    logs = args.props.get("accessLogSettings") or {}
    if not logs.get("destinationArn") or not logs.get("format"):
        report("stage has no access logs (accessLogSettings destination and format)", None)
    # X-Ray traces REST APIs; WebSocket APIs have no X-Ray setting
    # (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-xray.html).
    if args.resource_type == "aws:apigateway/stage:Stage" and args.props.get("xrayTracingEnabled") is not True:
        report("REST stage without X-Ray tracing (xrayTracingEnabled)", None)


def validate_no_data_traces(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Data traces log whole requests and responses (tokens, user messages) to CloudWatch
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html)."""
    if args.resource_type == "aws:apigateway/methodSettings:MethodSettings":
        settings = [args.props.get("settings") or {}]
    elif args.resource_type == "aws:apigatewayv2/stage:Stage":
        settings = [args.props.get("defaultRouteSettings") or {}, *(args.props.get("routeSettings") or [])]
    else:
        return
    if any(s.get("dataTraceEnabled") is True for s in settings):
        report("data trace logging is on (dataTraceEnabled)", None)


# --- protection ------------------------------------------------------------------------------


def validate_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    stack = stack_of(args.urn)
    if stack not in rules.PROTECTED_STACKS:
        return
    if args.resource_type == "aws:dynamodb/table:Table":
        if not args.opts.protect:
            report(f"the {stack} table must carry Pulumi protect", None)
        if args.props.get("deletionProtectionEnabled") is not True:
            report(f"the {stack} table must have DynamoDB deletion protection", None)
        for replica in args.props.get("replicas") or []:
            if replica.get("deletionProtectionEnabled") is not True:
                report(f"the {stack} replica in {replica.get('regionName')} must have deletion protection", None)
    elif args.resource_type == "aws:kms/key:Key":
        if not args.opts.protect:
            report(f"the {stack} key must carry Pulumi protect", None)
        window = args.props.get("deletionWindowInDays")
        if window != rules.PROTECTED_KEY_DELETION_WINDOW_DAYS:
            report(
                f"the {stack} key's deletion window is {window}; "
                f"{rules.PROTECTED_KEY_DELETION_WINDOW_DAYS} days, the longest KMS allows",
                None,
            )


# --- tags ------------------------------------------------------------------------------------


def _object(value: Any) -> Mapping:
    """Provider inputs hold objects as JSON text; resource inputs as objects."""
    if isinstance(value, str):
        return json.loads(value)
    return value or {}


def effective_tags(props: Mapping, provider_props: Mapping) -> Mapping | None:
    """The tags AWS will put on the resource, or None for a type without tags."""
    if "tagsAll" in props:
        return props["tagsAll"] or {}
    if "tags" in props:
        defaults = _object(_object(provider_props.get("defaultTags")).get("tags"))
        return {**defaults, **(props.get("tags") or {})}
    return None


def validate_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not args.resource_type.startswith("aws:"):
        return
    tags = effective_tags(args.props, _provider_props(args))
    if tags is None:
        return
    for problem in rules.tag_problems(tags, stack_of(args.urn)):
        report(problem, None)


# --- Lambda ----------------------------------------------------------------------------------


def lambda_problems(resource_type: str, props: Mapping, today: date) -> list[str]:
    if resource_type == "aws:lambda/function:Function":
        found = [
            rules.runtime_problem(props.get("runtime"), today),
            rules.architecture_problem(props.get("architectures")),
        ]
    elif resource_type == "aws:lambda/layerVersion:LayerVersion":
        found = [rules.runtime_problem(r, today) for r in props.get("compatibleRuntimes") or []]
        found.append(rules.architecture_problem(props.get("compatibleArchitectures")))
    else:
        return []
    return [p for p in found if p]


# --- the pack --------------------------------------------------------------------------------


def build_policies(today: Callable[[], date] = date.today) -> list[Policy]:
    """Every policy of the pack; ``today`` decides which runtimes are deprecated."""

    def validate_lambda(args: ResourceValidationArgs, report: ReportViolation) -> None:
        for problem in lambda_problems(args.resource_type, args.props, today()):
            report(problem, None)

    return [
        ResourceValidationPolicy(
            "iam-statements-name-resources",
            "Every IAM statement names its resources; '*' only for actions AWS defines without a "
            "resource type; ARN conditions use ArnLike/ArnEquals; trust and key policies let in '*' only "
            "under a condition on the caller's account; AWS managed policies only from an allowed list.",
            validate_iam,
        ),
        StackValidationPolicy(
            "iam-principals-of-this-account",
            "Trust and key policies let in an account other than the stack's only under a condition.",
            validate_stack_principals,
        ),
        ResourceValidationPolicy(
            "encryption-at-rest-customer-keys",
            "DynamoDB, SQS, SNS, CloudWatch log groups, Lambda environment variables and Secrets Manager "
            "are encrypted with a customer-managed KMS key in their own region.",
            validate_encryption,
        ),
        StackValidationPolicy(
            "encryption-with-the-stacks-keys",
            "Every encrypted store uses a KMS key this stack manages, in the store's region.",
            validate_stack_keys,
        ),
        ResourceValidationPolicy(
            "custom-domains-tls12",
            "API Gateway custom domains accept TLS 1.2 and later only.",
            validate_tls,
        ),
        ResourceValidationPolicy(
            "api-stages-access-logs-and-tracing",
            "API Gateway stages write access logs; REST stages trace with X-Ray.",
            validate_stage_logging,
        ),
        ResourceValidationPolicy(
            "api-no-data-traces",
            "API Gateway never logs request and response bodies (dataTraceEnabled).",
            validate_no_data_traces,
        ),
        ResourceValidationPolicy(
            "protected-state",
            "In protected stacks (prod) the table and its KMS keys carry Pulumi protect, the table and "
            "replicas DynamoDB deletion protection, and the keys a 30-day deletion window.",
            validate_protection,
        ),
        ResourceValidationPolicy(
            "cost-allocation-tags",
            "Every AWS resource that takes tags carries project, stack (= the stack's name) and managed-by.",
            validate_tags,
        ),
        ResourceValidationPolicy(
            "lambda-supported-runtime-arm64",
            f"Lambda functions and layers use no deprecated runtime ({rules.LAMBDA_RUNTIMES_SOURCE}) and arm64 only.",
            validate_lambda,
        ),
    ]
