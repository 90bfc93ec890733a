"""agent-infra bootstrap: GitHub's OIDC provider and, per stack, a deploy and a preview role.

Run once per AWS account with administrator credentials (docs/deploy.md, "The pipeline"). The
roles' trust and permissions are plain data in ``bootstrap/roles.py``.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi
import pulumi_aws as aws

from bootstrap.roles import (
    OIDC_AUDIENCE,
    OIDC_URL,
    ROLE_KINDS,
    SESSION_SECONDS,
    StackSettings,
    boundary_document,
    permission_documents,
    role_name,
    subject,
    trust_policy,
)
from components.api import account_logging

config = pulumi.Config()
repository = config.require("repository")
account_id = config.require("accountId")
partition = config.get("partition") or "aws"
stacks = {
    name: StackSettings(
        regions=list(raw["regions"]),
        environment=raw.get("environment"),
        hosted_zone_id=raw.get("hostedZoneId"),
        fault_injection=bool(raw.get("faultInjection", False)),
        long_tools=bool(raw.get("longTools", False)),
    )
    for name, raw in config.require_object("stacks").items()
}
if not stacks:
    raise pulumi.RunError("agent-infra-bootstrap:stacks names no stack")

# An explicit provider does not read the stack's aws:region, so it is passed here
# (https://www.pulumi.com/docs/iac/concepts/resources/providers/#explicit-providers).
# Tagged as the bootstrap's own, never as one of the program's stacks.
provider = aws.Provider(
    "aws",
    region=pulumi.Config("aws").require("region"),
    allowed_account_ids=[account_id],
    default_tags=aws.ProviderDefaultTagsArgs(
        tags={"project": "agent-infra", "stack": f"bootstrap-{pulumi.get_stack()}", "managed-by": "pulumi"}
    ),
)
opts = pulumi.ResourceOptions(provider=provider)

if config.get_bool("createOidcProvider") is False:
    provider_arn = aws.iam.get_open_id_connect_provider_output(
        url=OIDC_URL, opts=pulumi.InvokeOutputOptions(provider=provider)
    ).arn
else:
    # AWS trusts GitHub's certificate through its own CA library: no thumbprint to pin
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_providers_create_oidc.html).
    provider_arn = aws.iam.OpenIdConnectProvider("github", url=OIDC_URL, client_id_lists=[OIDC_AUDIENCE], opts=opts).arn

role_arns = {}
for stack, settings in stacks.items():
    # Every role the program creates carries this boundary (its __main__.py sets it).
    aws.iam.Policy(
        f"agent-infra-{stack}-boundary",
        name=f"agent-infra-{stack}-boundary",
        description=f"Permissions boundary of every role of agent-infra {stack}",
        policy=json.dumps(
            boundary_document(
                partition=partition,
                account=account_id,
                stack=stack,
                regions=settings.regions,
                fault_injection=settings.fault_injection,
                long_tools=settings.long_tools,
            )
        ),
        opts=opts,
    )
    subjects = {
        "deploy": subject(repository, environment=settings.environment)
        if settings.environment
        else subject(repository, branch="main"),
        "preview": subject(repository),
    }
    for kind in ROLE_KINDS:
        name = role_name(stack, kind)
        role = aws.iam.Role(
            name,
            name=name,
            description=f"GitHub Actions: pulumi {'up' if kind == 'deploy' else 'preview'} of agent-infra {stack}",
            assume_role_policy=provider_arn.apply(lambda arn, sub=subjects[kind]: json.dumps(trust_policy(arn, sub))),
            max_session_duration=SESSION_SECONDS[kind],
            opts=opts,
        )
        documents = permission_documents(kind, partition=partition, account=account_id, stack=stack, settings=settings)
        for index, document in enumerate(documents):
            managed = aws.iam.Policy(
                f"{name}-{index}",
                name=f"{name}-{index}",
                policy=json.dumps(document),
                opts=opts,
            )
            aws.iam.RolePolicyAttachment(f"{name}-{index}", role=role.name, policy_arn=managed.arn, opts=opts)
        role_arns[name] = role.arn

# API Gateway's account-wide CloudWatch role, in every region of the account's stacks: the
# account's setting, owned by the account's one bootstrap, so no stack depends on another
# having been deployed first (docs/deploy.md, "API Gateway's account logging").
if config.get_bool("apiGatewayAccountLogging") is not False:
    account_logging(
        "apigateway-logging",
        partition=partition,
        regions=sorted({r for settings in stacks.values() for r in settings.regions}),
        opts=opts,
    )

pulumi.export("oidcProviderArn", provider_arn)
pulumi.export("roleArns", role_arns)
