"""What the stack keeps secret, billed by the month: KMS customer managed keys and their
rotations, Secrets Manager secrets (EventBridge connections' included)."""

from __future__ import annotations

from cost.facts import StackFacts
from cost.lines import Line
from cost.prices import PriceTable


def kms_lines(facts: StackFacts, prices: PriceTable) -> list[Line]:
    p = prices.usd
    lines = []
    if facts.kms_keys:
        lines.append(
            Line("KMS", "customer managed keys", facts.kms_keys * p("kms.key_month"), f"{facts.kms_keys} keys")
        )
    if facts.kms_rotating_keys:
        days = facts.kms_rotation_days
        lines.append(
            Line(
                "KMS",
                "key rotation (the first two rotations of each key)",
                facts.kms_rotating_keys * 2 * p("kms.rotation_month"),
                f"{facts.kms_rotating_keys} keys rotated every {days} d: +$1 a key from day {days}, +$2 from day"
                f" {2 * days} on (shown)",
            )
        )
    return lines


def secret_lines(facts: StackFacts, prices: PriceTable) -> list[Line]:
    secrets = facts.secrets + facts.event_connections
    if not secrets:
        return []
    return [
        Line(
            "Secrets Manager",
            "secrets (incl. EventBridge connections')",
            secrets * prices.usd("secretsmanager.secret_month"),
            f"{secrets} secrets",
        )
    ]
