"""State: the DynamoDB single-table global table, owned by the home region.

One ``aws.dynamodb.Table`` in the home region carries a ``replicas`` entry for every other
region of the stack; nothing else manages replicas. Each region gets its own
customer-managed KMS key (rotation on), used by the table or replica in that region and by
the rest of the stack in that region (log groups, alarm topics, Lambda environments, failure
queues, secrets).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import naming
from components.config import StateConfig
from components.policies import table_key_policy
from handlers.shared.table import TABLE_SCHEMA

# "For EventBridge to use a customer managed key, you must add a resource tag to the key with
# a key of EventBridgeApiDestinations and a value of true"
# (https://docs.aws.amazon.com/eventbridge/latest/userguide/encryption-connections.html).
CONNECTION_KEY_TAG = {"EventBridgeApiDestinations": "true"}


@dataclass(frozen=True, kw_only=True)
class GlobalTableArgs:
    """Inputs of :class:`GlobalTable`."""

    regions: Sequence[str]
    """Every region of the stack; the first is the home region that owns the table."""
    stack: str
    """Names the keys' alias and the log groups the keys may encrypt."""
    partition: str
    account_id: pulumi.Input[str]
    """The AWS account, for the key policies."""
    state: StateConfig
    """``deletionProtection`` (DynamoDB's on the table and every replica, and Pulumi
    ``protect`` on them and the keys), the PITR and key deletion windows, consistency."""
    encrypts_connections: bool = False
    """The keys also encrypt an EventBridge connection (provider ``openai``: the HTTP Task's
    API key), which EventBridge refuses without the key's tag (:data:`CONNECTION_KEY_TAG`)."""


class GlobalTable(pulumi.ComponentResource):
    """The agent's state: a global table with a KMS key per region."""

    table_name: pulumi.Output[str]
    """Name of the table, the same in every region."""
    table_arn: pulumi.Output[str]
    """ARN of the table in the home region."""
    stream_arn: pulumi.Output[str]
    """ARN of the home table's stream."""
    key_arns: dict[str, pulumi.Output[str]]
    """ARN of the table key, per region."""

    def __init__(self, name: str, args: GlobalTableArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # The token keeps the module's old name (state.py): the type is part of every URN
        # under it, and a new token would replace the table and its keys on `pulumi up`.
        super().__init__("agent-infra:state:GlobalTable", name, None, opts)
        if not args.regions:
            raise ValueError("GlobalTable needs at least one region")
        child_opts = pulumi.ResourceOptions(parent=self)
        home, *replica_regions = args.regions

        self.key_arns = {}
        for region in args.regions:
            key = self._create_key(name, region, args, child_opts)
            self.key_arns[region] = key.arn

        schema, state = TABLE_SCHEMA, args.state
        self._table = aws.dynamodb.Table(
            f"{name}-table",
            region=home,
            billing_mode="PAY_PER_REQUEST",
            hash_key=schema.partition_key.name,
            range_key=schema.sort_key.name,
            attributes=[aws.dynamodb.TableAttributeArgs(name=a.name, type=a.type) for a in schema.attributes],
            global_secondary_indexes=[
                aws.dynamodb.TableGlobalSecondaryIndexArgs(
                    name=index.name,
                    key_schemas=[
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(
                            attribute_name=index.partition_key.name, key_type="HASH"
                        ),
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(
                            attribute_name=index.sort_key.name, key_type="RANGE"
                        ),
                    ],
                    projection_type=index.projection,
                )
                for index in schema.indexes
            ],
            stream_enabled=True,
            stream_view_type=schema.stream_view_type,
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=schema.ttl_attribute, enabled=True),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(
                enabled=True, recovery_period_in_days=state.pitr_recovery_days
            ),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
                enabled=True, kms_key_arn=self.key_arns[home]
            ),
            replicas=[
                aws.dynamodb.TableReplicaArgs(
                    region_name=region,
                    kms_key_arn=self.key_arns[region],
                    point_in_time_recovery=True,
                    deletion_protection_enabled=state.deletion_protection,
                    propagate_tags=True,
                    consistency_mode="STRONG" if state.strong_consistency else "EVENTUAL",
                )
                for region in replica_regions
            ],
            deletion_protection_enabled=state.deletion_protection,
            opts=pulumi.ResourceOptions.merge(child_opts, pulumi.ResourceOptions(protect=state.deletion_protection)),
        )

        self.table_name = self._table.name
        self.table_arn = self._table.arn
        self.stream_arn = self._table.stream_arn
        self.register_outputs(
            {
                "tableName": self.table_name,
                "tableArn": self.table_arn,
                "streamArn": self.stream_arn,
                "keyArns": self.key_arns,
            }
        )

    def _create_key(
        self, name: str, region: str, args: GlobalTableArgs, child_opts: pulumi.ResourceOptions
    ) -> aws.kms.Key:
        key = aws.kms.Key(
            f"{name}-key-{region}",
            region=region,
            description=f"Encrypts the agent-infra state table and the stack's data in {region}",
            enable_key_rotation=True,
            deletion_window_in_days=args.state.kms_deletion_window_days,
            tags=CONNECTION_KEY_TAG if args.encrypts_connections else None,
            policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: json.dumps(
                    table_key_policy(account, region, args.partition, naming.log_group_prefixes(args.stack))
                )
            ),
            # A destroyed key makes the table's backups unreadable: protect it like the table.
            opts=pulumi.ResourceOptions.merge(
                child_opts, pulumi.ResourceOptions(protect=args.state.deletion_protection)
            ),
        )
        aws.kms.Alias(
            f"{name}-key-alias-{region}",
            region=region,
            name=naming.table_key_alias(args.stack),
            target_key_id=key.key_id,
            opts=child_opts,
        )
        return key
