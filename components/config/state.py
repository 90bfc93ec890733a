"""``agent-infra:state``: the DynamoDB global table (TTL, protection, PITR, its key, the
consistency mode, evacuated regions)."""

from __future__ import annotations

from pydantic import Field

from components.config.base import ConfigModel

# Multi-Region strong consistency runs on exactly three regions of one of these sets
# (DynamoDB developer guide, "Consistency modes", 2025).
STRONG_CONSISTENCY_REGION_SETS = (
    frozenset({"us-east-1", "us-east-2", "us-west-2"}),
    frozenset({"eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1"}),
    frozenset({"ap-northeast-1", "ap-northeast-2", "ap-northeast-3"}),
)


class StateConfig(ConfigModel):
    ttl_days: int = Field(90, ge=1, le=3650, description="Items expire this many days after their last write.")
    deletion_protection: bool = Field(
        True, description="DynamoDB deletion protection and Pulumi `protect` on the table."
    )
    pitr_recovery_days: int = Field(
        35, ge=1, le=35, description="Point-in-time recovery window in days (1..35); PITR is always on."
    )
    kms_deletion_window_days: int = Field(
        30, ge=7, le=30, description="Waiting period before a deleted KMS key is destroyed (7..30)."
    )
    strong_consistency: bool = Field(
        False,
        description=(
            "Multi-Region strong consistency: exactly 3 regions of one region set. Refused for now: MRSC supports"
            " neither TTL nor transactions, which this store's writes use (docs/multi-region.md)."
        ),
    )
    evacuated_regions: list[str] = Field(
        default_factory=list,
        description=(
            "Regions taken out of every session's homes on purpose (a planned evacuation): their sessions are"
            " read and written in their next region until the list no longer names them."
        ),
    )
