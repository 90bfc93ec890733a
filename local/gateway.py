"""API Gateway, as far as the local stack needs it: the same routes, event shapes and statuses.

The REST side builds REST proxy events (with the authorizer's context) from real HTTP
requests, runs the real authorizer first, validates bodies with the same models API
Gateway's validators use, and answers the chat route the way the StartSyncExecution
integration does (start and wait: moto has no StartSyncExecution). The WebSocket side
runs ``$connect`` through the same authorizer (``?token=``), hands every message to the
connection function, and lets the agent-step post frames to a connection.
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec

from components.openapi import TURN_ERRORS, TURN_FAILED, TURN_TIMED_OUT
from handlers.shared.api import field_of
from handlers.shared.models import REQUEST_MODELS
from handlers.shared.streaming import ConnectionGone

ROUTES: list[tuple[str, str, str, bool]] = [
    # method, resource template, target, authenticated
    ("GET", "/v1/sessions", "router", True),
    ("POST", "/v1/sessions/{sessionId}/messages", "turn", True),
    ("GET", "/v1/sessions/{sessionId}/messages", "router", True),
    ("POST", "/v1/tasks", "router", True),
    ("GET", "/v1/tasks/{taskId}", "router", True),
    ("POST", "/v1/approvals/{approvalId}", "approval", True),
    ("GET", "/v1/health", "health", False),
]
BODY_MODELS = {
    "/v1/sessions/{sessionId}/messages": "ChatTurnRequest",
    "/v1/tasks": "TaskRequest",
    "/v1/approvals/{approvalId}": "ApprovalRequest",
}


def _pattern(template: str) -> re.Pattern:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")


_COMPILED = [(method, template, _pattern(template), target, auth) for method, template, target, auth in ROUTES]


def rest_event(
    method: str,
    resource: str,
    *,
    path: str | None = None,
    path_params: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: str | None = None,
    user: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """A REST proxy integration event as API Gateway sends it (authorizer context included)."""
    if path is None:
        path = resource
        for name, value in (path_params or {}).items():
            path = path.replace("{" + name + "}", value)
    request_id = request_id or str(uuid.uuid4())
    headers = dict(headers or {})
    authorizer = {"principalId": user, "userId": user, "integrationLatency": 0} if user else None
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/live{path}",
            "stage": "live",
            "requestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "accountId": "123456789012",
            "apiId": "local",
            "identity": {"sourceIp": "127.0.0.1"},
            "authorizer": authorizer,
            "protocol": "HTTP/1.1",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def _error(status: int, code: str, message: str, field: str | None = None) -> tuple[int, dict[str, str], bytes]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    return status, {"content-type": "application/json"}, json.dumps({"error": error}).encode()


class RestGateway:
    """Serves the REST routes on a loopback port, one JSON log line per request."""

    def __init__(
        self,
        handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]],
        authorize: Callable[[dict[str, Any]], dict[str, Any]],
        run_turn: Callable[[dict[str, Any], str], dict[str, Any]],
        log: Callable[[dict[str, Any]], None],
        max_body_bytes: int = 65_536,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.handlers = handlers
        self.authorize = authorize
        self.run_turn = run_turn
        self.log = log
        self.max_body_bytes = max_body_bytes
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self):
                started = time.perf_counter()
                request_id = str(uuid.uuid4())
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = gateway.serve(
                    self.command, self.path, dict(self.headers.items()), body, request_id
                )
                headers = {**headers, "x-request-id": request_id, "content-length": str(len(payload))}
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
                gateway.log(
                    {
                        "message": "request",
                        "correlationId": headers.get("x-correlation-id", request_id),
                        "method": self.command,
                        "path": self.path.split("?")[0],
                        "status": status,
                        "ms": round((time.perf_counter() - started) * 1000, 1),
                    }
                )

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="local-rest", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def serve(self, method: str, raw_path: str, headers: dict[str, str], body: bytes, request_id: str):
        parts = urlsplit(raw_path)
        matched = [
            (m, t, p.match(parts.path), target, auth) for m, t, p, target, auth in _COMPILED if p.match(parts.path)
        ]
        if not matched:
            return _error(404, "not_found", f"no route {parts.path}")
        route = next(((t, match, target, auth) for m, t, match, target, auth in matched if m == method), None)
        if route is None:
            return _error(405, "method_not_allowed", f"{method} is not allowed here")
        template, match, target, authenticated = route
        user = None
        if authenticated:
            try:
                decision = self.authorize(
                    {
                        "type": "TOKEN",
                        "authorizationToken": headers.get("Authorization", headers.get("authorization", "")),
                        "methodArn": f"arn:aws:execute-api:local:123456789012:local/live/{method}{template}",
                    }
                )
                user = decision["context"]["userId"]
            except Exception:
                return _error(401, "unauthorized", "Unauthorized")
        model = BODY_MODELS.get(template) if method == "POST" else None
        if model is not None:  # the request validator, before any integration runs
            if len(body) > self.max_body_bytes:
                return _error(413, "payload_too_large", f"the body is {len(body)} bytes; at most {self.max_body_bytes}")
            try:
                msgspec.json.decode(body, type=REQUEST_MODELS[model])
            except msgspec.ValidationError as error:
                return _error(400, "invalid_request", str(error).split(" - at ")[0], field_of(error))
            except msgspec.DecodeError:
                return _error(400, "invalid_request", "the body is not valid JSON")
        event = rest_event(
            method,
            template,
            path=parts.path,
            path_params=match.groupdict() or None,
            query=dict(parse_qsl(parts.query)) or None,
            headers=headers,
            body=body.decode() if body else None,
            user=user,
            request_id=request_id,
        )
        if target == "turn":
            return self._turn(event, json.loads(body), headers, request_id)
        response = self.handlers[target](event)
        out_headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        return response["statusCode"], out_headers, (response.get("body") or "").encode()

    def _turn(self, event: dict[str, Any], body: dict[str, Any], headers: dict[str, str], request_id: str):
        """What the StartSyncExecution integration and its mapping templates do."""
        turn_input = {
            "sessionId": event["pathParameters"]["sessionId"],
            "userId": event["requestContext"]["authorizer"]["userId"],
            "message": body["message"],
            "tools": body.get("tools"),
            "correlationId": request_id,
            "idempotencyKey": headers.get("Idempotency-Key") or headers.get("idempotency-key"),
            "connectionId": None,
        }
        result = self.run_turn(turn_input, request_id)
        if result["status"] == "SUCCEEDED":
            return 200, {"content-type": "application/json"}, result["output"].encode()
        mapped = (
            TURN_TIMED_OUT if result["status"] == "TIMED_OUT" else TURN_ERRORS.get(result.get("error"), TURN_FAILED)
        )
        return _error(mapped.status, mapped.code, mapped.message, mapped.field)

    def start(self) -> RestGateway:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class WebSocketGateway:
    """The WebSocket API: ``$connect`` through the authorizer, messages to the connection
    function, and ``post`` for the agent-step's frames."""

    def __init__(
        self,
        connection_handler: Callable[[dict[str, Any]], dict[str, Any]],
        authorize: Callable[[dict[str, Any]], dict[str, Any]],
        log: Callable[[dict[str, Any]], None],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        from websockets.sync.server import serve

        self.connection_handler = connection_handler
        self.authorize = authorize
        self.log = log
        self.connections: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.server = serve(self._session, host, port, process_request=self._process_request)
        self.thread = threading.Thread(target=self.server.serve_forever, name="local-websocket", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.socket.getsockname()[:2]
        return f"ws://{host}:{port}"

    def _event(self, route: str, connection_id: str, user: str | None, body: str | None = None) -> dict[str, Any]:
        context = {
            "routeKey": route,
            "eventType": {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE"),
            "connectionId": connection_id,
            "requestId": str(uuid.uuid4()),
            "stage": "live",
            "apiId": "local",
            "domainName": "localhost",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "127.0.0.1"},
        }
        if user:
            context["authorizer"] = {"principalId": user, "userId": user}
        event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
        if body is not None:
            event["body"] = body
        return event

    def _process_request(self, connection, request):
        token = dict(parse_qsl(urlsplit(request.path).query)).get("token", "")
        try:
            decision = self.authorize(
                {
                    "type": "REQUEST",
                    "methodArn": "arn:aws:execute-api:local:123456789012:local/live/$connect",
                    "queryStringParameters": {"token": token},
                }
            )
        except Exception:
            self.log({"message": "websocket refused", "status": 401})
            return connection.respond(401, "Unauthorized\n")
        connection.user_id = decision["context"]["userId"]
        return None

    def _session(self, websocket) -> None:
        connection_id = base64.b64encode(uuid.uuid4().bytes[:9]).decode()
        user = websocket.user_id
        if self.connection_handler(self._event("$connect", connection_id, user))["statusCode"] != 200:
            websocket.close(1008, "refused")
            return
        with self._lock:
            self.connections[connection_id] = websocket
        self.log({"message": "websocket connected", "connectionId": connection_id, "caller": user})
        try:
            for message in websocket:
                try:
                    action = json.loads(message).get("action")
                except (ValueError, AttributeError):
                    action = None
                route = "sendMessage" if action == "sendMessage" else "$default"
                reply = self.connection_handler(
                    self._event(route, connection_id, user, message if isinstance(message, str) else message.decode())
                )
                if reply.get("body"):
                    websocket.send(
                        json.dumps({"type": "ack", "statusCode": reply["statusCode"], **json.loads(reply["body"])})
                    )
        except Exception as error:  # the client went away mid-message: same as a close
            self.log(
                {"message": "websocket closed abruptly", "connectionId": connection_id, "error": type(error).__name__}
            )
        finally:
            with self._lock:
                self.connections.pop(connection_id, None)
            self.connection_handler(self._event("$disconnect", connection_id, user))
            self.log({"message": "websocket disconnected", "connectionId": connection_id})

    def post(self, connection_id: str, data: bytes) -> None:
        """``PostToConnection``: ConnectionGone when the client is no longer there."""
        with self._lock:
            websocket = self.connections.get(connection_id)
        if websocket is None:
            raise ConnectionGone(connection_id)
        try:
            websocket.send(data.decode())
        except Exception:
            raise ConnectionGone(connection_id) from None

    def start(self) -> WebSocketGateway:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
