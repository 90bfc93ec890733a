"""The generated state machines, executed by moto's Step Functions interpreter.

Every Lambda task runs the real handler in-process (local/stepfunctions/interpreter.py); the model call
is the state machine's own Converse task, answered over HTTP by a scripted model
(local/bedrock/model.py) through the Step Functions adapter. Each scenario asserts on the
execution's output or error and on the table.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from components.config import HISTORY_TOKENS_MAX
from components.workflows import (
    FargateRun,
    ModelCall,
    ToolRoute,
    WorkflowFunctions,
    WorkflowLimits,
    task_definition,
    turn_definition,
)
from handlers.agent_step import MAX_TOOL_CALLS_PER_STEP, AgentStep, AgentStepSettings, load_tool_specs
from handlers.approval import Approvals, ApprovalSettings
from handlers.compensate import Compensator
from handlers.shared.llm import LlmReply, ToolCall, ToolSpec
from handlers.shared.models import MESSAGE_BYTES
from handlers.shared.store import NewMessage, Store
from handlers.shared.table import TABLE_SCHEMA, memory_step_key
from handlers.shared.tooling import INLINE_RESULT_BYTES
from handlers.shared.turns import REPLY_BYTES, REQUEST_BYTES, state_bytes
from handlers.tools import load_tool
from handlers.tools.create_ticket import TicketStore
from handlers.tools.memory import MemoryStore
from local.bedrock.model import PromptCache, ScriptedModelServer, converse_response
from local.stepfunctions.interpreter import (
    MOTO_CONFIG,
    LambdaDispatcher,
    StepFunctionsAdapter,
    dispatching,
    instant_retries,
    wait_for_execution,
)
from local.stepfunctions.payload import PAYLOAD_LIMIT_BYTES, payload_bytes
from tests.conftest import REGION, TABLE_NAME
from tests.events import json_body, rest_event

ACCOUNT = "123456789012"
ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("calculator", "memory", "create_ticket")
OUTAGE = "outage"


def arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def reply(text="", calls=()):
    return LlmReply(text, tuple(calls), "tool_use" if calls else "end_turn", 10, 4, "bedrock:us-east-1")


def ticket(title: str, n: int) -> ToolCall:
    return ToolCall(f"tu-{title}-{n}", "create_ticket", {"title": f"ticket {title}"})


class ScriptedModel:
    """Answers each model call with the next scripted reply (``OUTAGE``: a 503 from then on)."""

    def __init__(self):
        self.replies: list[LlmReply | str] = []
        self.lock = threading.Lock()
        self.down = False

    def decide(self, request: dict) -> dict | None:
        with self.lock:
            if self.down or (self.replies and self.replies[0] == OUTAGE):
                self.down = True
                return None
            answer = self.replies.pop(0)
        calls = [(c.tool_use_id, c.name, c.input) for c in answer.tool_calls]
        return converse_response(answer.text, calls, (answer.input_tokens, answer.output_tokens))


class Stack:
    """A region's functions and both state machines on moto, wired to the real handlers."""

    def __init__(
        self,
        adapter,
        max_steps=4,
        approval_timeout=60,
        approval_tools=("create_ticket",),
        history_tokens=8_000,
        llm_model="m",
        prompt_cache=None,
        long_routes=(),
    ):
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.dynamodb.create_table(**TABLE_SCHEMA.create_table_request(TABLE_NAME))
        self.store = Store(TABLE_NAME, REGION, ttl_days=30, client=self.dynamodb)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.model = ScriptedModel()
        self.model_server = ScriptedModelServer(decide=self.model.decide, prompt_cache=prompt_cache).start()
        adapter.converse_endpoint = self.model_server.url
        self.adapter = adapter
        self.dispatcher = LambdaDispatcher()
        settings = AgentStepSettings(
            TABLE_NAME=TABLE_NAME,
            AWS_REGION=REGION,
            LLM_PROVIDER="bedrock",
            LLM_MODEL=llm_model,
            LLM_ENDPOINTS=[REGION],
            MAX_STEPS=max_steps + 5,
            HISTORY_TOKENS=history_tokens,
        )
        specs, _ = load_tool_specs()
        specs += [ToolSpec(r.name, f"{r.name}: runs long", {"type": "object", "properties": {}}) for r in long_routes]
        long_tools = {r.name for r in long_routes}
        self.agent = AgentStep(settings, self.store, specs, set(approval_tools), long_tools=long_tools)
        self.dispatcher.register("agent-prepare", lambda event, ctx: self.agent.prepare(event))
        self.dispatcher.register("agent-record", lambda event, ctx: self.agent.record(event))
        self.dispatcher.register("compensate", lambda event, ctx: Compensator(self.store).handle(event))
        self.approvals = Approvals(
            ApprovalSettings(TABLE_NAME=TABLE_NAME, AWS_REGION=REGION), self.store, lambda region: self.sfn
        )
        self.dispatcher.register("approval-request", lambda event, ctx: self.approvals.request(event))
        self.tool_handlers = {}
        for name in TOOLS:
            tool = load_tool(name)
            tool._store = self.store
            self.tool_handlers[name] = tool.lambda_handler
            self.dispatcher.register(name, self._tool(name))
        self.failures: dict[tuple[str, int], Exception] = {}  # (tool, seq) → raised once per delivery
        self.transient_once: set[tuple[str, int]] = set()
        self.deliver_twice = False
        routes = [ToolRoute(n, arn(n), requires_approval=n in approval_tools) for n in TOOLS] + list(long_routes)
        functions = WorkflowFunctions(
            arn("agent-prepare"),
            arn("agent-record"),
            arn("agent-stream"),
            arn("compensate"),
            routes,
            approval_request=arn("approval-request"),
        )
        model = ModelCall("bedrock", timeout_seconds=10)
        self.turn = turn_definition(functions, model, WorkflowLimits(max_steps=max_steps, timeout_seconds=120))
        self.task = task_definition(
            functions,
            model,
            WorkflowLimits(
                max_steps=max_steps,
                timeout_seconds=600,
                approval_timeout_seconds=approval_timeout,
                spot_wait_seconds=1,
            ),
        )
        role = boto3.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        self.turn_arn = self.sfn.create_state_machine(
            name="turn", definition=json.dumps(self.turn), roleArn=role, type="EXPRESS"
        )["stateMachineArn"]
        self.task_arn = self.sfn.create_state_machine(
            name="task", definition=json.dumps(self.task), roleArn=role, type="STANDARD"
        )["stateMachineArn"]

    def _tool(self, name):
        def handle(event, ctx):
            key = (name, event["seq"])
            if key in self.transient_once:
                self.transient_once.discard(key)
                raise type("ToolTransientError", (Exception,), {})("throttled, try again")
            if key in self.failures:
                raise self.failures[key]
            result = self.tool_handlers[name](event, ctx)
            if self.deliver_twice:  # at-least-once delivery: the same step again
                result = self.tool_handlers[name](event, ctx)
            return result

        return handle

    def turn_input(self, message="hello", **extra):
        return {
            "sessionId": "s1",
            "userId": "alice",
            "message": message,
            "tools": None,
            "correlationId": "corr-1",
            "idempotencyKey": None,
            "connectionId": None,
            **extra,
        }

    def run_turn(self, turn_input: dict, name: str | None = None) -> dict:
        """A turn as API Gateway runs it: StartSyncExecution on the Express machine."""
        return self.sfn.start_sync_execution(
            stateMachineArn=self.turn_arn, name=name or f"turn-{time.monotonic_ns()}", input=json.dumps(turn_input)
        )

    def history(self, session="s1") -> list:
        """The session's messages, oldest first."""
        return list(reversed(self.store.conversations.load(session, limit=100).messages))

    def tickets(self) -> list[str]:
        items = self.dynamodb.scan(
            TableName=TABLE_NAME,
            FilterExpression="begins_with(PK, :p)",
            ExpressionAttributeValues={":p": {"S": "TICKET#"}},
        )["Items"]
        return sorted(json.loads(i["fields"]["S"])["title"] for i in items)


@pytest.fixture
def stack(aws_credentials):
    with mock_aws(config=MOTO_CONFIG), StepFunctionsAdapter() as adapter:
        servers = []
        dispatcher = LambdaDispatcher()
        with dispatching(dispatcher) as active, instant_retries() as pauses:

            def build(**options):
                s = Stack(adapter, **options)
                servers.append(s.model_server)
                active.handlers = s.dispatcher.handlers
                s.dispatcher = active
                s.pauses = pauses
                return s

            yield build
        for server in servers:
            server.stop()
    for name in TOOLS:
        load_tool(name)._store = None


def output_of(result):
    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    return json.loads(result["output"])


def test_direct_answer(stack):
    s = stack()
    s.model.replies = [reply("Hi! What can I do?")]
    out = output_of(s.run_turn(s.turn_input("hi")))
    assert out["answer"] == "Hi! What can I do?" and out["toolCalls"] == [] and out["sessionId"] == "s1"
    assert out["usage"] == {"inputTokens": 10, "outputTokens": 4, "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0}
    history = list(reversed(s.store.conversations.load("s1").messages))
    assert [(m.role, m.text) for m in history] == [("user", "hi"), ("assistant", "Hi! What can I do?")]
    assert out["messageId"] == history[-1].message_id


def test_cache_points_go_through_the_sdk_integration_and_cache_usage_comes_back(stack):
    """The deployed turn's Converse task with a model that caches: the request's CachePoint
    blocks (PascalCase, as the SDK integration takes them) reach the model as Converse's
    cachePoint, and the usage it answers with, cache writes and reads, is the turn's."""
    sonnet = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
    s = stack(llm_model=sonnet, prompt_cache=PromptCache())
    s.model.replies = [reply("", [ToolCall("tu-1", "calculator", {"expression": "6*7"})]), reply("6 x 7 = 42")]
    out = output_of(s.run_turn(s.turn_input("Work this out for me, with care. " * 150)))
    first, second = s.model_server.requests
    assert first["messages"][-1]["content"][-1] == {"cachePoint": {"type": "default"}}
    assert second["messages"][0]["content"][-1] == {"cachePoint": {"type": "default"}}
    usage = out["usage"]
    assert usage["cacheWriteInputTokens"] > 1_024 and usage["cacheReadInputTokens"] > 1_024
    assert usage["inputTokens"] == 0, "everything but the answer was behind a checkpoint"


def test_one_tool_call(stack):
    s = stack()
    s.model.replies = [reply("", [ToolCall("tu-1", "calculator", {"expression": "6*7"})]), reply("6 x 7 = 42")]
    out = output_of(s.run_turn(s.turn_input("6*7?")))
    assert out["answer"] == "6 x 7 = 42"
    assert out["toolCalls"] == [
        {
            "name": "calculator",
            "input": {"expression": "6*7"},
            "output": {"expression": "6*7", "result": 42},
            "status": "SUCCEEDED",
        }
    ]
    assert out["usage"] == {"inputTokens": 20, "outputTokens": 8, "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0}
    # The calculator is pure: nothing to record, a redelivery computes the same answer.
    assert s.store.tool_runs.list(s.dispatcher.calls_to("calculator")[0]["executionId"]) == []
    assert [m.role for m in s.history()] == ["user", "assistant", "tool", "assistant"]
    assert [m.seq for m in s.history()] == [1, 1, 2, 2], "one item per step: the incoming message and the reply"
    # The model saw the call and its result, in order, in the second request.
    second = s.model_server.requests[1]["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[2]["content"][0]["toolResult"]["toolUseId"] == "tu-1"


def test_several_tool_calls_in_one_step(stack):
    s = stack()
    calls = [
        ToolCall("tu-1", "calculator", {"expression": "2+2"}),
        ToolCall("tu-2", "memory", {"action": "remember", "topic": "math", "text": "likes sums"}),
        ToolCall("tu-3", "calculator", {"expression": "1/0"}),
    ]
    s.model.replies = [reply("", calls), reply("done")]
    out = output_of(s.run_turn(s.turn_input()))
    assert [(c["name"], c["status"]) for c in out["toolCalls"]] == [
        ("calculator", "SUCCEEDED"),
        ("memory", "SUCCEEDED"),
        ("calculator", "FAILED"),
    ]
    assert out["toolCalls"][2]["output"] == {"error": "division by zero"}, (
        "a refused call goes back to the model, not a failure"
    )
    execution = s.dispatcher.calls_to("calculator")[0]["executionId"]
    assert [r.seq for r in s.store.tool_runs.list(execution)] == [101], "only the stateful tool is recorded"
    assert [m.text for m in MemoryStore(s.store.table).recall("alice", "math")] == ["likes sums"]


def test_a_transient_tool_failure_is_retried_then_succeeds(stack):
    s = stack()
    s.transient_once.add(("calculator", 100))
    s.model.replies = [reply("", [ToolCall("tu-1", "calculator", {"expression": "3*3"})]), reply("nine")]
    out = output_of(s.run_turn(s.turn_input()))
    assert out["toolCalls"][0]["output"]["result"] == 9
    assert len(s.dispatcher.calls_to("calculator")) == 2
    assert len(s.pauses) == 1 and 0 <= s.pauses[0] <= 1, "one full-jitter pause within the first interval"


def test_a_tool_that_crashes_is_a_failed_call_the_model_hears_about(stack):
    s = stack(approval_tools=())
    s.model.replies = [reply("", [ticket("T1", 1)]), reply("the ticket system is down, sorry")]
    s.failures[("create_ticket", 100)] = RuntimeError("ticket system down")
    out = output_of(s.run_turn(s.turn_input("open a ticket")))
    assert out["answer"] == "the ticket system is down, sorry"
    (call,) = out["toolCalls"]
    assert (call["status"], call["output"]) == ("FAILED", {"error": "the tool failed", "errorType": "RuntimeError"})
    assert len(s.dispatcher.calls_to("create_ticket")) == 1, "a crash is not a passing failure: no retry"
    # The history holds the call and its (failed) result: nothing dangles.
    assert [m.role for m in s.history()] == ["user", "assistant", "tool", "assistant"]


@pytest.mark.parametrize("failing_step", [1, 2, 3])
def test_a_failure_at_step_k_undoes_the_steps_before_it_newest_first_and_marks_the_turn_failed(
    stack, failing_step, monkeypatch
):
    s = stack(approval_tools=())
    s.model.replies = [reply("", [ticket(f"T{k}", k)]) for k in range(1, failing_step)] + [OUTAGE]
    deleted: list[str] = []
    original_delete = TicketStore.delete

    def spy(tickets, ticket_id):
        deleted.append(tickets.get(ticket_id)["title"])
        return original_delete(tickets, ticket_id)

    monkeypatch.setattr(TicketStore, "delete", spy)
    result = s.run_turn(s.turn_input("open three tickets"))
    assert result["status"] == "FAILED"
    assert result["error"] == "LlmUnavailableError"
    assert "ServiceUnavailableException" in result["cause"]
    expected_undone = [f"ticket T{k}" for k in range(failing_step - 1, 0, -1)]
    assert deleted == expected_undone, "exactly steps 1..k-1, newest first"
    assert s.tickets() == []
    execution = s.dispatcher.calls_to("compensate")[0]["executionId"]
    statuses = {r.seq: r.status for r in s.store.tool_runs.list(execution)}
    assert statuses == {k * 100: "COMPENSATED" for k in range(1, failing_step)}
    history = s.history()
    if failing_step == 1:
        assert history == [], "nothing of a turn that wrote nothing"
    else:
        assert history[-1].role == "failed" and history[-1].text == "LlmUnavailableError"
        assert {m.turn_id for m in history} == {execution}
    # The next turn's model sees none of the failed turn.
    s.model.down, s.model.replies = False, [reply("fresh start")]
    assert output_of(s.run_turn(s.turn_input("again")))["answer"] == "fresh start"
    assert [m["role"] for m in s.model_server.requests[-1]["messages"]] == ["user"]


def test_a_step_that_lost_its_position_to_another_turn_is_prepared_again(stack):
    s = stack()
    s.store.conversations.append_step(
        "s1", 1, [NewMessage(role="user", text="earlier")], turn_id="earlier", user_id="alice", new_session=True
    )
    prepare, raced = s.dispatcher.handlers["agent-prepare"], []

    def another_turn_writes_first(event, ctx):
        prepared = prepare(event, ctx)
        if not raced:  # between this step's read and its write, another turn takes the position
            raced.append(prepared["context"]["seq"])
            other = [NewMessage(role="user", text="other"), NewMessage(role="assistant", text="other answer")]
            s.store.conversations.append_step("s1", raced[0], other, turn_id="other", user_id="alice")
        return prepared

    s.dispatcher.handlers["agent-prepare"] = another_turn_writes_first
    s.model.replies = [reply("lost the race"), reply("written after the other turn")]
    out = output_of(s.run_turn(s.turn_input("hi")))
    assert out["answer"] == "written after the other turn"
    again = s.dispatcher.calls_to("agent-prepare")[1]
    assert (again["conflicts"], again["message"], again["step"]) == (1, "hi", 1), "the same step, read again"
    assert [m.text for m in s.history()] == ["earlier", "other", "other answer", "hi", "written after the other turn"]


def test_max_steps_exceeded_fails_clearly_after_compensating(stack):
    s = stack(max_steps=2, approval_tools=())
    s.model.replies = [reply("", [ticket("loop", k)]) for k in (1, 2)]
    result = s.run_turn(s.turn_input())
    assert result["status"] == "FAILED"
    assert result["error"] == "MaxStepsExceeded"
    assert result["cause"] == "no final answer after 2 model calls"
    assert s.tickets() == [], "the tickets of the unfinished run were undone"
    assert len(s.dispatcher.calls_to("compensate")) == 1


def test_the_same_step_delivered_twice_does_its_side_effect_once(stack):
    s = stack(approval_tools=())
    s.deliver_twice = True
    s.model.replies = [reply("", [ticket("once", 1)]), reply("opened")]
    out = output_of(s.run_turn(s.turn_input()))
    assert out["toolCalls"][0]["output"]["created"] is True
    assert s.tickets() == ["ticket once"]
    execution = s.dispatcher.calls_to("create_ticket")[0]["executionId"]
    assert len(s.store.tool_runs.list(execution)) == 1


def test_a_turn_never_waits_for_approval(stack):
    s = stack()
    s.model.replies = [reply("", [ticket("sneaky", 1)]), reply("I cannot do that here")]
    out = output_of(s.run_turn(s.turn_input()))
    assert out["toolCalls"] == [], "the agent-step drops a call to a tool the turn does not offer"
    assert s.tickets() == []


# --- the task machine: human approval --------------------------------------------------------


def start_task(s, message="open a ticket"):
    started = s.sfn.start_execution(
        stateMachineArn=s.task_arn,
        name="task-1",
        input=json.dumps({**s.turn_input(message), "taskId": "task-1"}),
    )
    return started["executionArn"]


def wait_for_approval(s, execution_id="task-1", timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = s.store.approvals.pending(execution_id)
        if pending:
            return pending[0]
        time.sleep(0.02)
    raise TimeoutError("no approval was requested")


def decide(s, approval_id, decision, user="alice", comment=None):
    body = {"decision": decision, **({"comment": comment} if comment else {})}
    event = rest_event(
        "POST", "/v1/approvals/{approvalId}", path_params={"approvalId": approval_id}, body=body, user=user
    )
    return s.approvals.handle(event)


def test_approval_granted_runs_the_tool(stack):
    s = stack()
    s.model.replies = [reply("", [ticket("approved", 1)]), reply("ticket opened")]
    execution_arn = start_task(s)
    approval = wait_for_approval(s)
    assert (approval.tool_name, approval.input, approval.region) == (
        "create_ticket",
        {"title": "ticket approved"},
        REGION,
    )
    assert s.tickets() == [], "nothing runs before the decision"
    assert decide(s, approval.approval_id, "approve", user="mallory")["statusCode"] == 404
    response = decide(s, approval.approval_id, "approve")
    assert response["statusCode"] == 200 and json_body(response) == {
        "approvalId": approval.approval_id,
        "decision": "approve",
    }
    out = output_of(wait_for_execution(s.sfn, execution_arn))
    assert out["answer"] == "ticket opened"
    assert s.tickets() == ["ticket approved"]
    decided = s.store.approvals.get("task-1", 100)
    assert (decided.status, decided.decided_by) == ("APPROVED", "alice")
    again = decide(s, approval.approval_id, "deny")
    assert again["statusCode"] == 409 and json_body(again)["error"]["code"] == "already_decided"


def test_approval_denied_goes_back_to_the_model(stack):
    s = stack()
    s.model.replies = [reply("", [ticket("denied", 1)]), reply("Understood, no ticket.")]
    execution_arn = start_task(s)
    approval = wait_for_approval(s)
    assert decide(s, approval.approval_id, "deny", comment="not now")["statusCode"] == 200
    out = output_of(wait_for_execution(s.sfn, execution_arn))
    assert out["answer"] == "Understood, no ticket."
    (call,) = out["toolCalls"]
    assert (call["name"], call["input"], call["status"]) == ("create_ticket", {"title": "ticket denied"}, "FAILED")
    assert call["output"]["error"] == "a human denied this call"
    # SendTaskFailure's cause carries the comment to the model, as on AWS.
    assert call["output"]["comment"] == "not now"
    assert s.tickets() == []
    decided = s.store.approvals.get("task-1", 100)
    assert (decided.status, decided.comment, decided.decided_by) == ("DENIED", "not now", "alice")


def test_approval_timed_out_goes_back_to_the_model_and_a_late_decision_is_410(stack):
    s = stack(approval_timeout=1)
    s.model.replies = [reply("", [ticket("late", 1)]), reply("Nobody approved; I stopped.")]
    execution_arn = start_task(s)
    approval = wait_for_approval(s)
    out = output_of(wait_for_execution(s.sfn, execution_arn, timeout=20))
    assert out["toolCalls"][0]["output"] == {"error": "nobody approved this call in time"}
    assert s.tickets() == []
    late = decide(s, approval.approval_id, "approve")
    assert late["statusCode"] == 410 and json_body(late)["error"]["code"] == "approval_expired"


def test_bad_approval_requests(stack):
    s = stack()
    assert decide(s, "not-an-id", "approve")["statusCode"] == 400
    assert decide(s, "task-9.100", "approve")["statusCode"] == 404
    event = rest_event(
        "POST", "/v1/approvals/{approvalId}", path_params={"approvalId": "task-9.100"}, body={"decision": "maybe"}
    )
    response = s.approvals.handle(event)
    assert response["statusCode"] == 400 and json_body(response)["error"]["field"] == "decision"
    # null is not "no comment": the edge's draft-4 model refuses it, so does the function.
    event = rest_event(
        "POST",
        "/v1/approvals/{approvalId}",
        path_params={"approvalId": "task-9.100"},
        body={"decision": "deny", "comment": None},
    )
    response = s.approvals.handle(event)
    assert response["statusCode"] == 400 and json_body(response)["error"]["field"] == "comment"


def test_a_decision_that_cannot_reach_the_task_is_kept_and_delivered_when_sent_again(stack):
    from botocore.stub import Stubber

    s = stack()
    s.model.replies = [reply("", [ticket("retry", 1)]), reply("ok")]
    execution_arn = start_task(s)
    approval = wait_for_approval(s)
    with Stubber(s.sfn) as stub:
        stub.add_client_error("send_task_success", "ServiceUnavailable", "down", 503)
        pending = decide(s, approval.approval_id, "approve")
    assert pending["statusCode"] == 202 and json_body(pending)["delivery"] == "pending"
    kept = s.store.approvals.get("task-1", 100)
    assert (kept.status, kept.delivered) == ("APPROVED", False), "decided, on its way"
    other = decide(s, approval.approval_id, "deny")
    assert other["statusCode"] == 409, "a decision taken stays taken"
    assert decide(s, approval.approval_id, "approve")["statusCode"] == 200, "the same decision again delivers it"
    assert s.store.approvals.get("task-1", 100).delivered
    assert output_of(wait_for_execution(s.sfn, execution_arn))["answer"] == "ok"


# --- every state within Step Functions' 256 KiB payload quota, at every configured maximum ----------


def state_payloads(execution) -> list[tuple[str, str, dict | list | str]]:
    """Every state's input and output in an execution's history, in order: (state, "input" or
    "output", the value)."""
    payloads = []
    for event in execution.to_history_output()["events"]:
        for details_key, field in (("stateEnteredEventDetails", "input"), ("stateExitedEventDetails", "output")):
            details = event.get(details_key)
            if details:
                payloads.append((details["name"], field, json.loads(details[field])))
    return payloads


def reply_of(size: int, calls=()) -> LlmReply:
    """A reply whose Converse result is ``size`` bytes as the state holds it."""
    wire = [(c.tool_use_id, c.name, c.input) for c in calls]
    text = "r" * (1 + size - state_bytes(converse_response("r", wire)))
    assert state_bytes(converse_response(text, wire)) == size
    return LlmReply(text, tuple(calls), "tool_use" if calls else "end_turn", 10, 4, "bedrock:us-east-1")


@pytest.mark.parametrize("tool_steps", [1, 7], ids=["one tool step", "seven tool steps"])
def test_a_turn_at_every_configured_maximum_keeps_each_state_within_256_kib(stack, tool_steps):
    """The largest message, a model request cut to its budget, a reply of maxTokens' size, the
    most tool calls a step makes and each tool's largest inline result, through the deployed
    turn, in one tool step or several (the turn's summary of its calls grows with them, up to
    its own budget). The adapter fails the run with States.DataLimitExceeded, which nothing
    catches, as soon as a state's input or output passes 256 KiB."""
    s = stack(approval_tools=(), max_steps=tool_steps + 1, history_tokens=HISTORY_TOKENS_MAX)
    for seq in range(1, 21):  # earlier turns: Prepare cuts the conversation to its budget
        old = [NewMessage(role="user", text="q" * 2_500), NewMessage(role="assistant", text="a" * 2_500)]
        s.store.conversations.append_step("s1", seq, old, turn_id=f"old-{seq}", user_id="alice", new_session=seq == 1)
    memories = MemoryStore(s.store.table)
    calls = []
    for i in range(MAX_TOOL_CALLS_PER_STEP):  # each recall answers the largest result passed inline
        topic = f"topic-{i:02d}"
        shape = {"topic": topic, "memories": ["x" * 2_000] * 2 + [""]}
        rest = INLINE_RESULT_BYTES - len(json.dumps(shape, separators=(",", ":")))
        for n, text in enumerate(["x" * 2_000, "x" * 2_000, "x" * rest]):
            memories.remember("alice", topic, text, memory_step_key(1_000 + n, 100, f"seed-{i}-{n}"))
        calls.append(ToolCall(f"tooluse_{i:02d}", "memory", {"action": "recall", "topic": topic, "text": "p" * 2_000}))
    s.model.replies = [reply_of(REPLY_BYTES, calls)] * tool_steps + [reply_of(REPLY_BYTES)]
    message = "m" * (MESSAGE_BYTES - 2)
    assert state_bytes(message) == MESSAGE_BYTES

    out = output_of(s.run_turn(s.turn_input(message)))

    assert len(out["answer"]) > REPLY_BYTES * 0.9 and len(out["toolCalls"]) == MAX_TOOL_CALLS_PER_STEP * tool_steps
    payloads = state_payloads(s.adapter.sync_executions[-1])
    # Every maximum was reached: the request, the tool results.
    first_request = next(value["request"] for name, field, value in payloads if name == "Call model")
    assert REQUEST_BYTES - 6_000 < state_bytes(first_request) <= REQUEST_BYTES
    results = next(value["toolResults"] for name, field, value in payloads if name == "Next step")
    assert [len(json.dumps(r["output"], separators=(",", ":"))) for r in results] == [
        INLINE_RESULT_BYTES
    ] * MAX_TOOL_CALLS_PER_STEP
    largest = max((payload_bytes(value), name, field) for name, field, value in payloads)
    assert largest[0] <= PAYLOAD_LIMIT_BYTES, largest
    # Every request still holds the user's message and, for each tool result, its call.
    for request in (value["request"] for name, field, value in payloads if name == "Call model" and field == "input"):
        text = json.dumps(request)
        assert message[:1_000] in text, "the turn's own message was cut from the model request"
        uses = re.findall(r'"ToolUse": \{[^{}]*?"ToolUseId": "(tooluse_\d+)"', text)
        results = re.findall(r'"ToolResult": \{[^{}]*?"ToolUseId": "(tooluse_\d+)"', text)
        assert set(results) <= set(uses) and len(results) <= len(uses), "a tool result without its call"


# --- long tools: fargate-spot (ecs:runTask.sync on the adapter's LocalEcs) and continuation ----

# A stand-in for the container's entrypoint (tests only; the local stack runs python -m
# handlers.longrun): counts its runs, saves a checkpoint on SIGTERM (exit 143), waits to be
# interrupted while INTERRUPTIONS runs are left, then records the result as a tool does.
LONGRUN_STAND_IN = """
import json, os, pathlib, signal, sys, time
from handlers.shared.store import Store
event = json.loads(os.environ["TOOL_EVENT"])
out = pathlib.Path(os.environ["OUT"])
runs = out / "runs"
n = int(runs.read_text()) + 1 if runs.exists() else 1
runs.write_text(str(n))
if os.environ["MODE"] == "crash":
    sys.exit(3)
checkpoint = out / "checkpoint"
def term(*_):
    checkpoint.write_text(str(n))
    sys.exit(143)
signal.signal(signal.SIGTERM, term)
out.joinpath(f"started-{n}").write_text("x")
if n <= int(os.environ["INTERRUPTIONS"]):
    while True:
        time.sleep(0.01)
store = Store(os.environ["TABLE_NAME"], os.environ["AWS_REGION"], ttl_days=30)
resumed = int(checkpoint.read_text()) if checkpoint.exists() else None
store.tool_runs.record(event["executionId"], event["seq"], event["name"], status="SUCCEEDED",
    input=event["input"], output={"summary": "digested", "runs": n, "resumedAfterRun": resumed})
"""
DIGEST_TASK = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/agent-infra-test-digest:1"


@pytest.fixture
def long_stack(stack, tmp_path):
    from moto.server import ThreadedMotoServer

    from local.ecs.tasks import LocalTaskDefinition

    server = ThreadedMotoServer(port=0, verbose=False)
    server.start()
    script = tmp_path / "entrypoint.py"
    script.write_text(LONGRUN_STAND_IN)
    digest = ToolRoute(
        "digest",
        "",
        runtime="fargate-spot",
        fargate=FargateRun(
            f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/c", DIGEST_TASK, "tool", ["subnet-a"], ["sg-1"], spot_attempts=2
        ),
    )
    crawl = ToolRoute("crawl", arn("crawl"), runtime="continuation", max_slices=3)
    s = stack(long_routes=(digest, crawl))

    def register(mode="ok", interruptions=0):
        host, port = server.get_host_and_port()
        s.adapter.ecs.register(
            LocalTaskDefinition(
                DIGEST_TASK,
                "tool",
                {
                    "OUT": str(tmp_path),
                    "MODE": mode,
                    "INTERRUPTIONS": str(interruptions),
                    "TABLE_NAME": TABLE_NAME,
                    "AWS_REGION": REGION,
                    "AWS_ENDPOINT_URL": f"http://{host}:{port}",
                    "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing",
                    "PYTHONPATH": str(ROOT),
                },
                command=(sys.executable, str(script)),
                stop_timeout_seconds=5,
            )
        )
        for run in range(1, interruptions + 1):
            s.adapter.ecs.interrupt_next(when=lambda run=run: (tmp_path / f"started-{run}").exists())

    s.register_digest = register
    yield s
    server.stop()


def run_long_task(s, tool_call):
    s.model.replies = [reply("", [tool_call]), reply("all done")]
    return output_of(wait_for_execution(s.sfn, start_task(s, "digest these"), timeout=60))


def test_a_spot_interrupted_long_tool_resumes_on_spot_then_on_demand_and_the_model_gets_the_record(long_stack):
    s = long_stack
    s.register_digest(interruptions=2)
    out = run_long_task(s, ToolCall("tu-1", "digest", {}))
    assert out["answer"] == "all done"
    runs = s.adapter.ecs.stopped
    assert [(t["CapacityProviderName"], t["StopCode"], t["Containers"][0]["ExitCode"]) for t in runs] == [
        ("FARGATE_SPOT", "SpotInterruption", 143),
        ("FARGATE_SPOT", "SpotInterruption", 143),
        ("FARGATE", "EssentialContainerExited", 0),
    ], "two Spot runs (spot_attempts), each interrupted, then on-demand Fargate"
    (call,) = out["toolCalls"]
    assert call["status"] == "SUCCEEDED", "the status is the record's"
    assert call["output"] == {"summary": "digested", "runs": 3, "resumedAfterRun": 2}
    waits = [
        e
        for e in s.sfn.get_execution_history(executionArn=execution_arn(s), maxResults=1000)["events"]
        if e["type"] == "WaitStateEntered"
    ]
    assert [json.loads(e["stateEnteredEventDetails"]["input"])["waitSeconds"] for e in waits] == [1, 2], "doubling"


def execution_arn(s):
    return s.sfn.list_executions(stateMachineArn=s.task_arn)["executions"][0]["executionArn"]


def test_a_long_tool_that_crashes_is_a_failed_call_the_model_hears_about(long_stack):
    s = long_stack
    s.register_digest(mode="crash")
    out = run_long_task(s, ToolCall("tu-1", "digest", {}))
    (call,) = out["toolCalls"]
    assert call["status"] == "FAILED" and call["output"] == {
        "error": "the tool failed",
        "errorType": "States.TaskFailed",
    }
    assert len(s.adapter.ecs.stopped) == 1, "an exit that is not a Spot interruption is not retried"


def test_a_turn_never_runs_a_long_tool(long_stack):
    s = long_stack
    s.register_digest()
    s.model.replies = [reply("", [ToolCall("tu-1", "digest", {})]), reply("ok")]
    refused = s.run_turn(s.turn_input(tools=["digest"]))
    assert refused["status"] == "FAILED" and refused["error"] == "LongToolInTurnError"
    assert s.adapter.ecs.stopped == []


def continuation(limit):
    def handle(event, ctx):
        token = event["continuation"]
        n = 0 if token is None else int(token)
        if n + 1 < limit:
            return {"done": False, "continuation": str(n + 1)}
        result = {"slices": n + 1}
        return {
            "done": True,
            "result": {**{k: event[k] for k in ("toolUseId", "name", "seq")}, "status": "SUCCEEDED", "output": result},
        }

    return handle


@pytest.mark.parametrize(
    ("slices_needed", "expected"),
    [(3, ("SUCCEEDED", {"slices": 3})), (4, ("FAILED", {"error": "the tool did not finish within 3 slices"}))],
)
def test_a_continuation_tool_is_invoked_slice_by_slice_until_done_or_max_slices(long_stack, slices_needed, expected):
    s = long_stack
    seen = []
    handle = continuation(slices_needed)
    s.dispatcher.register("crawl", lambda event, ctx: seen.append(event["continuation"]) or handle(event, ctx))
    out = run_long_task(s, ToolCall("tu-1", "crawl", {}))
    (call,) = out["toolCalls"]
    assert (call["status"], call["output"]) == expected
    assert seen == [None, "1", "2"], "each slice gets the token the last one handed back; at most max_slices"
