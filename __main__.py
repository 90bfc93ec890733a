"""agent-infra: LLM agent infrastructure on AWS in several regions at once.

Wiring only: read and validate the stack config, build the global parts, export outputs.
"""

import pulumi
import pulumi_aws as aws

from components.config import NAMESPACE, StackConfigError, load_stack_config
from components.state import GlobalTable, GlobalTableArgs

try:
    stack_config = load_stack_config(pulumi.Config(NAMESPACE).get_object)
except StackConfigError as error:
    # RunError prints just the message: the user sees which key is wrong, not a traceback.
    raise pulumi.RunError(str(error)) from None

stack = pulumi.get_stack()
cost_tags = {"project": "agent-infra", "stack": stack, "managed-by": "pulumi", **stack_config.tags}

# One provider for every region: regional resources name their region with `region=`.
aws_provider = aws.Provider(
    "aws",
    region=stack_config.home_region,
    default_tags=aws.ProviderDefaultTagsArgs(tags=cost_tags),
)
stack_opts = pulumi.ResourceOptions(providers=[aws_provider])
identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=aws_provider))

state = GlobalTable(
    "state",
    GlobalTableArgs(
        regions=stack_config.regions,
        account_id=identity.account_id,
        partition=stack_config.partition,
        deletion_protection=stack_config.state.deletion_protection,
        pitr_recovery_days=stack_config.state.pitr_recovery_days,
        kms_deletion_window_days=stack_config.state.kms_deletion_window_days,
        strong_consistency=stack_config.state.strong_consistency,
        key_alias=f"alias/agent-infra-{stack}-state",
    ),
    opts=stack_opts,
)

pulumi.export("homeRegion", stack_config.home_region)
pulumi.export("regions", stack_config.regions)
pulumi.export("tableName", state.table_name)
pulumi.export("tableArn", state.table_arn)
pulumi.export("tableStreamArn", state.stream_arn)
pulumi.export("tableKeyArns", state.key_arns)
