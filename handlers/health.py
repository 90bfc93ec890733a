"""``GET /v1/health``: a deep but cheap check of this region, for Route 53 health checks.

It checks that this region's table replica and both state machines are ACTIVE (three
describe calls), and remembers the answer for ``CACHE_SECONDS`` so health-check traffic
from many Route 53 checkers costs a handful of calls a minute. Unauthenticated: it says
only "ok" or which part is not.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import msgspec

from handlers import init_done
from handlers.shared.log import get_logger
from handlers.shared.settings import load_settings

logger = get_logger("health")
CACHE_SECONDS = 10.0


class HealthSettings(msgspec.Struct, frozen=True):
    TABLE_NAME: str
    AWS_REGION: str
    TURN_STATE_MACHINE_ARN: str
    TASK_STATE_MACHINE_ARN: str
    LOG_LEVEL: str = "INFO"


class Health:
    def __init__(
        self, settings: HealthSettings, dynamodb: Any, stepfunctions: Any, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.dynamodb = dynamodb
        self.stepfunctions = stepfunctions
        self._clock = clock
        self._cached: tuple[float, dict[str, str]] | None = None

    def checks(self) -> dict[str, str]:
        if self._cached and self._clock() - self._cached[0] < CACHE_SECONDS:
            return self._cached[1]
        results: dict[str, str] = {}
        try:
            table = self.dynamodb.describe_table(TableName=self.settings.TABLE_NAME)["Table"]
            results["table"] = (
                "ok" if table.get("TableStatus") == "ACTIVE" else table.get("TableStatus", "unknown").lower()
            )
        except Exception as error:
            logger.warning("table check failed", extra={"error": type(error).__name__})
            results["table"] = "unreachable"
        for kind, arn in (
            ("turn", self.settings.TURN_STATE_MACHINE_ARN),
            ("task", self.settings.TASK_STATE_MACHINE_ARN),
        ):
            try:
                machine = self.stepfunctions.describe_state_machine(stateMachineArn=arn)
                results[kind] = "ok" if machine.get("status") == "ACTIVE" else machine.get("status", "unknown").lower()
            except Exception as error:
                logger.warning("state machine check failed", extra={"machine": kind, "error": type(error).__name__})
                results[kind] = "unreachable"
        self._cached = (self._clock(), results)
        return results

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        results = self.checks()
        healthy = all(v == "ok" for v in results.values())
        return {
            "statusCode": 200 if healthy else 503,
            "headers": {"content-type": "application/json", "cache-control": "no-store"},
            "body": json.dumps(
                {"status": "ok" if healthy else "degraded", "region": self.settings.AWS_REGION, "checks": results}
            ),
        }


def from_environment() -> Health:
    import boto3

    settings = load_settings(HealthSettings)
    return Health(
        settings,
        boto3.client("dynamodb", region_name=settings.AWS_REGION),
        boto3.client("stepfunctions", region_name=settings.AWS_REGION),
    )


app: Health | None = from_environment() if "TABLE_NAME" in os.environ else None
init_done()


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    global app
    if app is None:
        app = from_environment()
    return app.handle(event)
