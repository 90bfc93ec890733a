"""API Gateway: a REST request or a WebSocket turn's messages and connection minutes, the
authorizer's calls its cache leaves, one access log line's bytes, and the requests the
account and the stage allow."""

from __future__ import annotations

from cost.facts import StackFacts
from cost.lines import TURNS, Capacity, Line
from cost.prices import PriceTable, Regional
from cost.turn import TurnProfile


def authorizer_calls_per_turn(facts: StackFacts, profile: TurnProfile) -> float:
    """A TOKEN authorizer's answer is cached per token for the TTL the program sets: a user
    who sends a turn every ``turn_interval_s`` seconds costs one invocation per TTL."""
    if facts.authorizer_ttl_s <= 0:
        return 1.0
    return min(1.0, profile.turn_interval_s / facts.authorizer_ttl_s)


ACCESS_LOG_SAMPLE = {
    # AWS-shaped values for each $context variable of the stage's access log format.
    "$context.requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    "$context.extendedRequestId": "Abc12EFgIAMFz1A=",
    "$context.authorizer.userId": "auth0|64f1c0ffee0123456789abcd",
    "$context.identity.sourceIp": "203.0.113.10",
    "$context.httpMethod": "POST",
    "$context.resourcePath": "/v1/sessions/{sessionId}/messages",
    "$context.status": "200",
    "$context.responseLatency": "3150",
    "$context.integrationLatency": "3120",
    "$context.error.message": "-",
    "$context.xrayTraceId": "1-5e1b4151-43a7e7a1e2f5b1c7d3e9f0a1",
    "$context.identity.apiKeyId": "a1b2c3d4e5",
    "$context.connectionId": "L0SM9cOFvHcCIhw=",
    "$context.routeKey": "sendMessage",
}


def access_log_bytes(log_format: str) -> int:
    """One access log line of the stage's format, rendered with AWS-shaped values."""
    line = log_format
    for variable in sorted(ACCESS_LOG_SAMPLE, key=len, reverse=True):
        line = line.replace(variable, ACCESS_LOG_SAMPLE[variable])
    return len(line.encode()) + 1 if log_format else 0


def websocket_access_lines(profile: TurnProfile) -> float:
    """Access log lines of a WebSocket turn: one per route invocation, so the turn's message
    and its session's $connect and $disconnect, shared by the session's turns
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-logging.html).
    The frames the backend posts back are @connections calls, not route invocations."""
    return 1 + 2 / max(1, profile.session_turns)


def turn_lines(profile: TurnProfile, at: Regional) -> list[Line]:
    """A REST turn's request, or a WebSocket turn's messages and its connection's minutes."""
    if profile.kind != "websocket":
        return [
            Line(
                "API Gateway",
                "REST request",
                TURNS * at.turn("apigw.rest_request"),
                f"1 a turn at ${at.rates('apigw.rest_request', 1e6)} per M",
            )
        ]
    messages = 1 + profile.websocket_frames
    minutes = profile.turn_interval_s / 60
    return [
        Line(
            "API Gateway",
            "WebSocket messages",
            TURNS * messages * at.turn("apigw.ws_message"),
            f"{messages:g} a turn (1 in, {profile.websocket_frames:g} frames out)",
        ),
        Line(
            "API Gateway",
            "WebSocket connection minutes",
            TURNS * minutes * at.turn("apigw.ws_connection_minute"),
            f"{minutes:g} min a turn (a connection open for the session)",
        ),
    ]


def capacity(per_region: float, profile: TurnProfile, facts: StackFacts, prices: PriceTable) -> list[Capacity]:
    """Requests a second against the account's quota and the stage's throttle, and a day's
    requests against the usage plan's quota (one client)."""
    api = per_region if profile.kind != "websocket" else per_region * (1 + profile.websocket_frames)
    return [
        Capacity.of_quota("API Gateway requests per second (account)", api, prices.quotas["apigw.account_rps"]),
        Capacity(
            "API Gateway requests per second (stage throttle)",
            api,
            facts.stage_rate_limit,
            "api.rateLimit (stack config)",
            "",
            True,
        ),
        Capacity(
            "API Gateway requests per day per API key (usage plan)",
            api * 86400,
            facts.quota_per_day,
            "api.quotaPerDay (stack config), one client",
            "",
            True,
        ),
    ]
