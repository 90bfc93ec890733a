"""WebSocket connection Lambda: ``$connect``, ``$disconnect``, ``sendMessage``, ``$default``.

``$connect`` runs after the authorizer accepted the ``?token=`` JWT; the connection is
stored with its user, its region and a short TTL. ``sendMessage`` (``{"action":
"sendMessage", "sessionId", "message"}``) starts an Express turn asynchronously with the
connection id, and the agent-step streams the answer back to it. Nothing here waits on the
model.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from typing import Annotated, Any

import msgspec

from handlers import init_done
from handlers.shared.log import get_logger, log_context
from handlers.shared.models import Id, Text
from handlers.shared.settings import load_settings
from handlers.shared.state import StateStore

logger = get_logger("connection")


class ConnectionSettings(msgspec.Struct, frozen=True):
    TABLE_NAME: str
    AWS_REGION: str
    TURN_STATE_MACHINE_ARN: str
    TTL_DAYS: int = 90
    LOG_LEVEL: str = "INFO"


class SendMessage(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    action: Annotated[str, msgspec.Meta(pattern="^sendMessage$")]
    sessionId: Id
    message: Text


def _reply(status: int, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"statusCode": status, "body": json.dumps(body) if body is not None else ""}


class Connections:
    def __init__(self, settings: ConnectionSettings, store: StateStore, stepfunctions: Callable[[], Any]) -> None:
        self.settings = settings
        self.store = store
        self._stepfunctions = stepfunctions

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        context = event.get("requestContext") or {}
        route = context.get("routeKey")
        connection_id = context.get("connectionId") or ""
        with log_context(correlationId=context.get("requestId"), connectionId=connection_id, route=route):
            if route == "$connect":
                user = (context.get("authorizer") or {}).get("userId")
                if not user:
                    return _reply(401)
                self.store.put_connection(connection_id, user)
                logger.info("connected")
                return _reply(200)
            if route == "$disconnect":
                self.store.delete_connection(connection_id)
                logger.info("disconnected")
                return _reply(200)
            if route == "sendMessage":
                return self.send_message(connection_id, event.get("body") or "", context.get("requestId") or "")
            return _reply(
                400,
                {
                    "error": {
                        "code": "unknown_action",
                        "message": 'send {"action": "sendMessage", "sessionId", "message"}',
                    }
                },
            )

    def send_message(self, connection_id: str, body: str, request_id: str) -> dict[str, Any]:
        connection = self.store.get_connection(connection_id)
        if connection is None:
            return _reply(410, {"error": {"code": "gone", "message": "reconnect first"}})
        try:
            request = msgspec.json.decode(body.encode(), type=SendMessage)
        except (msgspec.ValidationError, msgspec.DecodeError) as error:
            return _reply(400, {"error": {"code": "invalid_request", "message": str(error)}})
        turn_input = {
            "sessionId": request.sessionId,
            "userId": connection.user_id,
            "message": request.message,
            "tools": None,
            "correlationId": request_id or str(uuid.uuid4()),
            "idempotencyKey": None,
            "connectionId": connection_id,
        }
        started = self._stepfunctions().start_execution(
            stateMachineArn=self.settings.TURN_STATE_MACHINE_ARN,
            name=(request_id or uuid.uuid4().hex).replace("=", "")[:80],
            input=json.dumps(turn_input),
        )
        logger.info("turn started", extra={"sessionId": request.sessionId, "executionArn": started["executionArn"]})
        return _reply(202, {"sessionId": request.sessionId, "status": "STARTED"})


def from_environment() -> Connections:
    import boto3

    settings = load_settings(ConnectionSettings)
    store = StateStore(
        settings.TABLE_NAME,
        settings.AWS_REGION,
        settings.TTL_DAYS,
        client=boto3.client("dynamodb", region_name=settings.AWS_REGION),
    )
    sfn = boto3.client("stepfunctions", region_name=settings.AWS_REGION)
    return Connections(settings, store, lambda: sfn)


app: Connections | None = from_environment() if "TABLE_NAME" in os.environ else None
init_done()


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    global app
    if app is None:
        app = from_environment()
    return app.handle(event)
