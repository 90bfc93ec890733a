"""WebSocket connection Lambda: ``$connect``, ``$disconnect``, ``sendMessage``, ``$default``.

``$connect`` runs after the authorizer accepted the ``?token=`` JWT; the connection is
stored with its user, its region and a short TTL. ``sendMessage`` (``{"action":
"sendMessage", "sessionId", "message", "idempotencyKey"?}``) starts an Express turn
asynchronously with the connection id, and the agent-step streams the answer back to it.
``idempotencyKey`` is the REST route's ``Idempotency-Key``: a client that lost its connection
(its region failed) sends the message again with the same key, through any region, and the
turn runs once. Nothing here waits on the model.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from typing import Annotated, Any

import msgspec

from handlers import init_done
from handlers.shared.api import field_of
from handlers.shared.log import get_logger, log_context
from handlers.shared.models import ID_RULE, IDEMPOTENCY_KEY_PATTERN, IDEMPOTENCY_KEY_RULE, Id, Text
from handlers.shared.settings import load_settings
from handlers.shared.store import Store

logger = get_logger("connection")


class ConnectionSettings(msgspec.Struct, frozen=True):
    TABLE_NAME: str
    AWS_REGION: str
    TURN_STATE_MACHINE_ARN: str
    TTL_DAYS: int = 90
    TABLE_REGIONS: list[str] = []
    EVACUATED_REGIONS: list[str] = []
    LOG_LEVEL: str = "INFO"


class SendMessage(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    action: Annotated[str, msgspec.Meta(pattern="^sendMessage$")]
    sessionId: Id
    message: Text
    idempotencyKey: Annotated[str, msgspec.Meta(pattern=IDEMPOTENCY_KEY_PATTERN)] | msgspec.UnsetType = msgspec.UNSET


def _reply(status: int, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """The route's answer. ``sendMessage`` and ``$default`` have a route response, so API
    Gateway sends this body back to the client as one frame
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-response.html)."""
    return {"statusCode": status, "body": json.dumps(body) if body is not None else ""}


def _error(status: int, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if field:
        frame["field"] = field
    return _reply(status, frame)


class Connections:
    def __init__(self, settings: ConnectionSettings, store: Store, stepfunctions: Callable[[], Any]) -> None:
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
                self.store.connections.put(connection_id, user)
                logger.info("connected")
                return _reply(200)
            if route == "$disconnect":
                self.store.connections.delete(connection_id)
                logger.info("disconnected")
                return _reply(200)
            if route == "sendMessage":
                return self.send_message(connection_id, event.get("body") or "", context.get("requestId") or "")
            return _error(400, "unknown_action", 'send {"action": "sendMessage", "sessionId", "message"}')

    def send_message(self, connection_id: str, body: str, request_id: str) -> dict[str, Any]:
        connection = self.store.connections.get(connection_id)
        if connection is None:
            return _error(410, "gone", "reconnect first")
        try:
            request = msgspec.json.decode(body.encode("utf-8", "surrogatepass"), type=SendMessage)
        except msgspec.ValidationError as error:
            field = field_of(error)
            # The same words as the REST routes for the same rule.
            message = {"sessionId": f"sessionId must be {ID_RULE}", "idempotencyKey": IDEMPOTENCY_KEY_RULE}.get(
                field or "", str(error).split(" - at ")[0]
            )
            return _error(400, "invalid_request", message, field)
        except msgspec.DecodeError as error:
            return _error(400, "invalid_json", f"the message is not valid JSON: {error}")
        turn_input = {
            "sessionId": request.sessionId,
            "userId": connection.user_id,
            "message": request.message,
            "tools": None,
            "correlationId": request_id or str(uuid.uuid4()),
            "idempotencyKey": request.idempotencyKey or None,
            "connectionId": connection_id,
        }
        started = self._stepfunctions().start_execution(
            stateMachineArn=self.settings.TURN_STATE_MACHINE_ARN,
            name=(request_id or uuid.uuid4().hex).replace("=", "")[:80],
            input=json.dumps(turn_input),
        )
        logger.info("turn started", extra={"sessionId": request.sessionId, "executionArn": started["executionArn"]})
        return _reply(202, {"type": "accepted", "sessionId": request.sessionId, "status": "STARTED"})


def from_environment() -> Connections:
    import boto3

    settings = load_settings(ConnectionSettings)
    store = Store.from_settings(settings)
    sfn = boto3.client("stepfunctions", region_name=settings.AWS_REGION)
    return Connections(settings, store, lambda: sfn)


app: Connections | None = from_environment() if "TABLE_NAME" in os.environ else None
init_done()


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    global app
    if app is None:
        app = from_environment()
    return app.handle(event)
