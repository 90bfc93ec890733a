"""The LLM client: Converse and OpenAI-compatible wire formats, retries, failover, breakers."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from handlers.shared.llm import (
    BedrockTransport,
    CircuitBreaker,
    LlmClient,
    LlmMessage,
    LlmRequestError,
    LlmUnavailableError,
    OpenAiTransport,
    RetryPolicy,
    ToolCall,
    ToolResult,
    ToolSpec,
    bedrock_request,
)

CALC = ToolSpec("calculator", "math", {"type": "object", "properties": {"expression": {"type": "string"}}})
HELLO = [LlmMessage("user", text="hello")]


def converse_reply(text="hi", tool_use=None, input_tokens=10, output_tokens=3):
    content = [{"text": text}] if text else []
    if tool_use:
        content.append({"toolUse": tool_use})
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": "tool_use" if tool_use else "end_turn",
        "usage": {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
        },
        "metrics": {"latencyMs": 120},
    }


class Breakers:
    """A breaker per endpoint with a controllable clock, fresh per test."""

    def __init__(self):
        self.now = 0.0
        self.by_name = {}

    def __call__(self, name):
        if name not in self.by_name:
            self.by_name[name] = CircuitBreaker(threshold=3, reset_after=30, clock=lambda: self.now)
        return self.by_name[name]


def bedrock_transport(region):
    client = boto3.client("bedrock-runtime", region_name=region)
    return BedrockTransport(region, timeout=5, client=client), Stubber(client)


def client_for(transports, breakers=None, sleeps=None, provider="bedrock"):
    recorded = sleeps if sleeps is not None else []
    return LlmClient(
        provider=provider,
        model="anthropic.test-model",
        transports=transports,
        retry=RetryPolicy(attempts_per_endpoint=3, base_delay=0.5, max_delay=4.0),
        breakers=breakers or Breakers(),
        sleep=recorded.append,
        rng=lambda: 1.0,  # the top of each jitter window, so the bounds are visible
    )


class RaisingClient:
    def __init__(self, error):
        self.error = error
        self.calls = 0

    def converse(self, **_):
        self.calls += 1
        raise self.error


def test_nearest_endpoint_throttling_is_retried_with_jitter_then_fails_over(capsys):
    near, near_stub = bedrock_transport("us-east-1")
    far, far_stub = bedrock_transport("us-west-2")
    for _ in range(3):
        near_stub.add_client_error("converse", "ThrottlingException", "slow down", 429)
    far_stub.add_response("converse", converse_reply("from the west"))
    sleeps = []
    with near_stub, far_stub:
        reply = client_for([near, far], sleeps=sleeps).converse("system", HELLO, [CALC])
    assert reply.text == "from the west" and reply.endpoint == "bedrock:us-west-2"
    assert sleeps == [0.5, 1.0], "full jitter windows double: base * 2**attempt"
    near_stub.assert_no_pending_responses()
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert metrics[-1]["InputTokens"] == 10 and metrics[-1]["OutputTokens"] == 3
    assert metrics[-1]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "AgentInfra/LLM"


def test_a_throttled_endpoint_that_recovers_is_kept():
    near, stub = bedrock_transport("us-east-1")
    stub.add_client_error("converse", "ThrottlingException", "slow down", 429)
    stub.add_response("converse", converse_reply("second try"))
    with stub:
        reply = client_for([near]).converse("", HELLO)
    assert reply.text == "second try"


@pytest.mark.parametrize(
    "error",
    [
        ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com"),
        EndpointConnectionError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com"),
    ],
    ids=["timeout", "down"],
)
def test_timeout_or_down_fails_over_at_once(error):
    broken = RaisingClient(error)
    near = BedrockTransport("us-east-1", timeout=5, client=broken)
    far, far_stub = bedrock_transport("eu-west-1")
    far_stub.add_response("converse", converse_reply("from europe"))
    sleeps = []
    with far_stub:
        reply = client_for([near, far], sleeps=sleeps).converse("", HELLO)
    assert reply.endpoint == "bedrock:eu-west-1"
    assert broken.calls == 1 and sleeps == [], "no retry against a timed-out or unreachable endpoint"


def test_all_endpoints_down_is_one_clear_error():
    near = BedrockTransport("us-east-1", 5, client=RaisingClient(ReadTimeoutError(endpoint_url="x")))
    far, far_stub = bedrock_transport("us-west-2")
    for _ in range(3):
        far_stub.add_client_error("converse", "ServiceUnavailableException", "down", 503)
    with far_stub, pytest.raises(LlmUnavailableError) as caught:
        client_for([near, far]).converse("", HELLO)
    message = str(caught.value)
    assert message.startswith("all 2 LLM endpoints failed")
    assert "bedrock:us-east-1: timed out after 5s" in message
    assert "bedrock:us-west-2: ServiceUnavailableException after 3 attempts" in message


def test_an_invalid_request_fails_at_once_without_failover():
    near, stub = bedrock_transport("us-east-1")
    far = BedrockTransport("us-west-2", 5, client=RaisingClient(AssertionError("must not be called")))
    stub.add_client_error("converse", "ValidationException", "messages: bad role", 400)
    with stub, pytest.raises(LlmRequestError, match="bad role"):
        client_for([near, far]).converse("", HELLO)


def test_model_not_served_in_a_region_fails_over():
    near, near_stub = bedrock_transport("us-east-1")
    far, far_stub = bedrock_transport("us-west-2")
    near_stub.add_client_error("converse", "AccessDeniedException", "model access not granted", 403)
    far_stub.add_response("converse", converse_reply("ok"))
    with near_stub, far_stub:
        assert client_for([near, far]).converse("", HELLO).endpoint == "bedrock:us-west-2"


def test_the_breaker_opens_after_three_failures_and_closes_after_a_good_trial():
    breakers = Breakers()
    near_client = RaisingClient(ReadTimeoutError(endpoint_url="x"))
    near = BedrockTransport("us-east-1", 5, client=near_client)
    far, far_stub = bedrock_transport("us-west-2")
    for _ in range(5):
        far_stub.add_response("converse", converse_reply("west"))
    client = client_for([near, far], breakers=breakers)
    with far_stub:
        for _ in range(3):
            client.converse("", HELLO)
        assert breakers("bedrock:us-east-1").state == "open"
        assert near_client.calls == 3
        client.converse("", HELLO)
        assert near_client.calls == 3, "an open breaker skips the endpoint"
        breakers.now = 31  # the cool-down has passed: one trial call goes through
        assert breakers("bedrock:us-east-1").state == "half-open"
        client.converse("", HELLO)
        assert near_client.calls == 4
        assert breakers("bedrock:us-east-1").state == "open", "a failed trial opens it again"
    near_stub_client = boto3.client("bedrock-runtime", region_name="us-east-1")
    near.__dict__["_client"] = near_stub_client
    breakers.now = 62
    with Stubber(near_stub_client) as near_stub:
        near_stub.add_response("converse", converse_reply("east is back"))
        assert client.converse("", HELLO).endpoint == "bedrock:us-east-1"
    assert breakers("bedrock:us-east-1").state == "closed"


def test_deadline_stops_retries_that_cannot_finish():
    near, stub = bedrock_transport("us-east-1")
    stub.add_client_error("converse", "ThrottlingException", "slow down", 429)
    clock = [100.0]
    client = client_for([near])
    client.clock = lambda: clock[0]
    with stub, pytest.raises(LlmUnavailableError, match="no time left"):
        client.converse("", HELLO, deadline=100.2)


def test_converse_request_shape_with_tool_use_and_results():
    messages = [
        LlmMessage("user", text="what is 2+2?"),
        LlmMessage("assistant", text="", tool_calls=(ToolCall("tu-1", "calculator", {"expression": "2+2"}),)),
        LlmMessage("user", tool_results=(ToolResult("tu-1", "calculator", 4),)),
        LlmMessage("user", text="and thanks"),
    ]
    request = bedrock_request("m", "be brief", messages, [CALC], 256)
    assert request["system"] == [{"text": "be brief"}]
    assert [m["role"] for m in request["messages"]] == ["user", "assistant", "user"], "consecutive user turns merge"
    assert request["messages"][1]["content"] == [
        {"toolUse": {"toolUseId": "tu-1", "name": "calculator", "input": {"expression": "2+2"}}}
    ]
    assert request["messages"][2]["content"][0] == {
        "toolResult": {"toolUseId": "tu-1", "content": [{"json": {"result": 4}}], "status": "success"}
    }
    assert request["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {"json": CALC.input_schema}
    # Stubber validates against the real Converse model.
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response("converse", converse_reply("4", None), request)
        reply = BedrockTransport("us-east-1", 5, client=client).converse(request)
    assert reply.text == "4"


def test_tool_use_reply_is_parsed():
    near, stub = bedrock_transport("us-east-1")
    stub.add_response(
        "converse", converse_reply("", {"toolUseId": "tu-9", "name": "calculator", "input": {"expression": "6*7"}})
    )
    with stub:
        reply = client_for([near]).converse("", HELLO, [CALC])
    assert reply.tool_calls == (ToolCall("tu-9", "calculator", {"expression": "6*7"}),)
    assert reply.stop_reason == "tool_use"


# --- OpenAI-compatible endpoints, over real HTTP on loopback --------------------------------


class FakeOpenAi(http.server.BaseHTTPRequestHandler):
    script: list  # each entry: (status, body_dict, delay_seconds)
    seen: list

    def do_POST(self):
        length = int(self.headers["content-length"])
        self.seen.append(
            {"path": self.path, "auth": self.headers.get("authorization"), "body": json.loads(self.rfile.read(length))}
        )
        status, body, delay = self.script.pop(0)
        time.sleep(delay)
        payload = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            if status == 429:
                self.send_header("retry-after", "0")
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_openai():
    servers = []

    def start(script):
        handler = type("Handler", (FakeOpenAi,), {"script": list(script), "seen": []})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1", handler

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def chat_reply(content="hello", tool_calls=None):
    message = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2},
    }


def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_openai_retries_429_then_answers_with_tool_calls_and_the_key(fake_openai):
    url, handler = fake_openai(
        [
            (429, {"error": "rate"}, 0),
            (
                200,
                chat_reply(
                    None,
                    [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "calculator", "arguments": '{"expression": "1+1"}'},
                        }
                    ],
                ),
                0,
            ),
        ]
    )
    transport = OpenAiTransport(url, timeout=2, api_key=lambda: "sk-test")
    reply = client_for([transport], provider="openai").converse("sys", HELLO, [CALC])
    assert reply.tool_calls == (ToolCall("c1", "calculator", {"expression": "1+1"}),)
    assert reply.stop_reason == "tool_use" and reply.input_tokens == 7
    assert handler.seen[0]["path"] == "/v1/chat/completions"
    assert handler.seen[1]["auth"] == "Bearer sk-test"
    body = handler.seen[1]["body"]
    assert body["messages"][0] == {"role": "system", "content": "sys"}
    assert body["tools"][0]["function"]["name"] == "calculator"


def test_openai_slow_or_refused_endpoints_fail_over(fake_openai):
    slow_url, _ = fake_openai([(200, chat_reply("too late"), 1.5)])
    good_url, _ = fake_openai([(200, chat_reply("fast"), 0)])
    transports = [
        OpenAiTransport(closed_port_url(), timeout=0.5),
        OpenAiTransport(slow_url, timeout=0.5),
        OpenAiTransport(good_url, timeout=0.5),
    ]
    reply = client_for(transports, provider="openai").converse("", HELLO)
    assert reply.text == "fast" and reply.endpoint == good_url


def test_openai_all_failing_names_each_endpoint(fake_openai):
    url, _ = fake_openai([(503, {}, 0)] * 3)
    refused = closed_port_url()
    with pytest.raises(LlmUnavailableError) as caught:
        client_for([OpenAiTransport(refused, 0.5), OpenAiTransport(url, 0.5)], provider="openai").converse("", HELLO)
    assert f"{refused}: unreachable" in str(caught.value)
    assert f"{url}: HTTP 503 after 3 attempts" in str(caught.value)


# --- regressions found in review -------------------------------------------------------------


class ScriptedStream:
    """A transport whose streaming call emits some text, then fails or succeeds as told."""

    def __init__(self, name, script):
        self.name = name
        self.script = list(script)
        self.calls = 0

    def converse(self, request):  # pragma: no cover - streaming only
        raise AssertionError("not used")

    def converse_stream(self, request, on_text):
        from handlers.shared.llm import LlmReply, TransientEndpointError

        self.calls += 1
        emit, outcome = self.script.pop(0)
        for piece in emit:
            on_text(piece)
        if outcome == "throttle":
            raise TransientEndpointError("ThrottlingException")
        return LlmReply("".join(emit), (), "end_turn", 1, 1, self.name)


def test_a_bad_request_during_the_half_open_trial_does_not_wedge_the_breaker():
    breakers = Breakers()
    near, stub = bedrock_transport("us-east-1")
    client = client_for([near], breakers=breakers)
    breaker = breakers("bedrock:us-east-1")
    for _ in range(3):
        breaker.record_failure()
    breakers.now = 31
    stub.add_client_error("converse", "ValidationException", "bad", 400)
    stub.add_response("converse", converse_reply("recovered"))
    with stub:
        with pytest.raises(LlmRequestError):
            client.converse("", HELLO)
        assert client.converse("", HELLO).text == "recovered", "the next call is the trial again"


def test_a_stream_error_with_a_lowercase_code_fails_over_before_any_text():
    from botocore.exceptions import EventStreamError

    class Broken:
        def converse_stream(self, **_):
            raise EventStreamError({"Error": {"Code": "throttlingException", "Message": "slow"}}, "ConverseStream")

    near = BedrockTransport("us-east-1", 5, client=Broken())
    far = ScriptedStream("far", [(["from ", "far"], "ok")])
    texts = []
    reply = client_for([near, far]).converse("", HELLO, on_text=texts.append)
    assert reply.endpoint == "far" and "".join(texts) == "from far"


def test_a_failure_after_text_went_out_is_final_and_never_repeats_text():
    near = ScriptedStream("near", [(["Hello "], "throttle"), (["Hello ", "world"], "ok")])
    far = ScriptedStream("far", [(["other"], "ok")])
    texts = []
    with pytest.raises(LlmUnavailableError, match="mid-stream"):
        client_for([near, far]).converse("", HELLO, on_text=texts.append)
    assert texts == ["Hello "] and near.calls == 1 and far.calls == 0


def test_running_out_of_time_does_not_count_against_endpoints():
    breakers = Breakers()
    a, b = bedrock_transport("us-east-1")[0], bedrock_transport("us-west-2")[0]
    client = client_for([a, b], breakers=breakers)
    client.clock = lambda: 100.0
    for _ in range(4):
        with pytest.raises(LlmUnavailableError, match="no time left"):
            client.converse("", HELLO, deadline=50.0)
    assert breakers("bedrock:us-east-1").state == "closed" and breakers("bedrock:us-west-2").state == "closed"
