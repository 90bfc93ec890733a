"""The API's clients: one API key value per client, the same in every region.

A client's key must work wherever latency routing or a failover sends it, so the value is
made once per stack (a ``pulumi_random`` secret) and set as the ``value`` of that client's
key in each region's usage plan. API Gateway accepts an alphanumeric value of 20 to 128
characters (``value`` of aws_api_gateway_api_key:
https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/api_gateway_api_key;
CreateApiKey: https://docs.aws.amazon.com/apigateway/latest/api/API_CreateApiKey.html).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from components.config import ApiConfig

KEY_LENGTH = 40


@dataclass(frozen=True, kw_only=True)
class ApiClientKeysArgs:
    """Inputs of :class:`ApiClientKeys`."""

    api: ApiConfig
    """``clients``: one key each."""


class ApiClientKeys(pulumi.ComponentResource):
    """One secret API key value per client, for every region's usage plan."""

    values: dict[str, pulumi.Output[str]]
    """Each client's key value (secret), by client name."""

    def __init__(self, name: str, args: ApiClientKeysArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-infra:clients:ApiClientKeys", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.values = {
            client: pulumi.Output.secret(
                random.RandomPassword(f"{name}-{client}", length=KEY_LENGTH, special=False, opts=child).result
            )
            for client in args.api.clients
        }
        self.register_outputs({"clients": list(args.api.clients)})
