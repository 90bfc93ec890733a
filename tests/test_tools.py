"""The tools and their exactly-once step, on moto."""

from __future__ import annotations

import math

import pytest

from handlers.shared.store import Store
from handlers.shared.tooling import ToolContext, ToolInputError, ToolTransientError
from handlers.tools import available_tools, load_tool
from handlers.tools.calculator import evaluate
from handlers.tools.create_ticket import TicketStore
from handlers.tools.memory import MemoryStore
from tests.conftest import REGION, TABLE_NAME

STARTED_AT = "2026-11-28T09:00:00.123Z"  # $$.Execution.StartTime
STARTED_AT_MS = 1_795_856_400_123


def context(store: Store, seq: int = 101, execution: str = "exec-1", user: str = "alice") -> ToolContext:
    return ToolContext(
        execution_id=execution,
        seq=seq,
        user_id=user,
        session_id="s1",
        correlation_id="corr-1",
        store=store,
        started_at_ms=STARTED_AT_MS,
    )


def event(name: str, tool_input: dict, seq: int = 101, execution: str = "exec-1", action: str = "run") -> dict:
    return {
        "executionId": execution,
        "seq": seq,
        "name": name,
        "userId": "alice",
        "sessionId": "s1",
        "toolUseId": f"tu-{seq}",
        "input": tool_input,
        "correlationId": "corr-1",
        "startedAt": STARTED_AT,
        "action": action,
    }


@pytest.fixture
def lambda_env(monkeypatch, store):
    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    monkeypatch.setenv("AWS_REGION", REGION)
    for name in available_tools():
        tool = load_tool(name)
        tool._store = store  # the handler's cached store, pointed at the moto client
    yield
    for name in available_tools():
        load_tool(name)._store = None


def test_registry_lists_the_shipped_tools_and_each_has_a_spec():
    assert available_tools() == [
        "calculator",
        "create_ticket",
        "http_fetch",
        "memory",
        "memory_search",
        "summarize_documents",
    ]
    runtimes = {name: load_tool(name).runtime for name in available_tools()}
    assert runtimes == {
        "calculator": "lambda",
        "create_ticket": "lambda",
        "http_fetch": "lambda",
        "memory": "lambda",
        "memory_search": "continuation",
        "summarize_documents": "fargate-spot",
    }
    for name in available_tools():
        spec = load_tool(name).spec()
        assert spec["name"] == name and spec["description"]
        assert spec["inputSchema"]["type"] == "object" and "$ref" not in str(spec["inputSchema"])
    with pytest.raises(LookupError, match=r"no tool module handlers/tools/nope\.py"):
        load_tool("nope")


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("2 ** 10", 1024),
        ("-3 // 2", -2),
        ("7 % 4", 3),
        ("sqrt(16) + abs(-2)", 6.0),
        ("max(1, 5, 3)", 5),
        ("pi", math.pi),
        ("1 / 4", 0.25),
    ],
)
def test_calculator_evaluates_arithmetic(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('id')", "unsupported element"),
        ("open('/etc/passwd')", "unsupported element"),
        ("(1).__class__", "unsupported element"),
        ("x + 1", "unsupported element"),
        ("[1, 2]", "unsupported element"),
        ("'a' * 3", "unsupported element"),
        ("1 / 0", "division by zero"),
        ("9 ** 9999", "exponents are limited"),
        ("10.0 ** 400", "too large"),
        ("sqrt(-1)", "sqrt: the number must not be negative"),
        ("1 +", "not an arithmetic expression"),
        ("lambda: 1", "unsupported element"),
    ],
)
def test_calculator_refuses_what_is_not_arithmetic(expression, message):
    with pytest.raises(ToolInputError, match=message.replace("(", r"\(")):
        evaluate(expression)


def test_calculator_lambda_answers_success_and_bad_input_without_recording(lambda_env, store):
    ok = load_tool("calculator").lambda_handler(event("calculator", {"expression": "6 * 7"}))
    assert ok == {
        "toolUseId": "tu-101",
        "name": "calculator",
        "seq": 101,
        "status": "SUCCEEDED",
        "output": {"expression": "6 * 7", "result": 42},
    }
    bad = load_tool("calculator").lambda_handler(event("calculator", {"expression": "1/0"}, seq=102))
    assert bad["status"] == "FAILED" and bad["output"] == {"error": "division by zero"}
    wrong_shape = load_tool("calculator").lambda_handler(event("calculator", {"expr": "1"}, seq=103))
    assert wrong_shape["status"] == "FAILED" and "invalid input" in wrong_shape["output"]["error"]
    # The calculator is pure: a redelivery computes the same, so nothing is written.
    assert store.tool_runs.list("exec-1") == []


def test_a_repeated_step_does_its_side_effect_once_and_returns_the_recorded_result(lambda_env, store, dynamodb):
    first = load_tool("create_ticket").lambda_handler(event("create_ticket", {"title": "printer on fire"}))
    again = load_tool("create_ticket").lambda_handler(event("create_ticket", {"title": "printer on fire"}))
    assert first["status"] == "SUCCEEDED" and first["output"]["created"] is True
    assert again["output"] == first["output"] and again["replayed"] is True
    tickets = dynamodb.scan(
        TableName=TABLE_NAME, FilterExpression="begins_with(PK, :p)", ExpressionAttributeValues={":p": {"S": "TICKET#"}}
    )["Items"]
    assert len(tickets) == 1
    assert TicketStore(store.table).get(first["output"]["ticketId"])["title"] == "printer on fire"


def test_two_racing_deliveries_make_one_ticket(store, dynamodb):
    # Both deliveries miss the record (they look before either has written), both run:
    # the ticket's key is the step's idempotency key, so the second put changes nothing,
    # and the second record loses to the first.
    tool = load_tool("create_ticket")
    ctx = context(store)
    from handlers.tools.create_ticket import TicketInput, run

    first_output = run(ctx, TicketInput(title="race"))
    second_output = run(ctx, TicketInput(title="race"))
    assert first_output["ticketId"] == second_output["ticketId"]
    assert (first_output["created"], second_output["created"]) == (True, False)
    store.tool_runs.record("exec-1", 101, "create_ticket", status="SUCCEEDED", input={}, output=first_output)
    result = tool.execute(ctx, {"title": "race"}, "tu-101")
    assert result["output"] == first_output and result["replayed"] is True


def test_compensation_deletes_the_ticket_once(lambda_env, store):
    created = load_tool("create_ticket").lambda_handler(event("create_ticket", {"title": "undo me"}))
    ticket_id = created["output"]["ticketId"]
    undone = load_tool("create_ticket").lambda_handler(event("create_ticket", {}, action="compensate"))
    assert undone == {
        "name": "create_ticket",
        "seq": 101,
        "compensated": True,
        "detail": {"ticketId": ticket_id, "deleted": True},
    }
    assert TicketStore(store.table).get(ticket_id) is None
    again = load_tool("create_ticket").lambda_handler(event("create_ticket", {}, action="compensate"))
    assert again["detail"]["deleted"] is False, "a second compensation finds nothing to delete"
    nothing = load_tool("create_ticket").lambda_handler(event("create_ticket", {}, seq=999, action="compensate"))
    assert nothing["compensated"] is False


def test_create_ticket_input_is_validated(lambda_env):
    result = load_tool("create_ticket").lambda_handler(event("create_ticket", {"title": "x", "priority": "urgent"}))
    assert result["status"] == "FAILED" and "invalid input" in result["output"]["error"]


def test_memory_remembers_and_recalls_per_user(lambda_env, store):
    tool = load_tool("memory")
    tool.lambda_handler(event("memory", {"action": "remember", "topic": "travel", "text": "window seat"}, seq=101))
    tool.lambda_handler(event("memory", {"action": "remember", "topic": "travel", "text": "no red-eyes"}, seq=102))
    recalled = tool.lambda_handler(event("memory", {"action": "recall", "topic": "travel"}, seq=103))
    assert recalled["output"] == {"topic": "travel", "memories": ["no red-eyes", "window seat"]}
    MemoryStore(store.table).remember("bob", "travel", "aisle", step_key="0000000000001-00101-bobstep")
    assert "aisle" not in str(tool.lambda_handler(event("memory", {"action": "recall", "topic": "travel"}, seq=104)))
    missing_text = tool.lambda_handler(event("memory", {"action": "remember", "topic": "travel"}, seq=105))
    assert missing_text["status"] == "FAILED" and missing_text["output"] == {
        "error": "remember needs the text to remember"
    }
    bad_topic = tool.lambda_handler(event("memory", {"action": "recall", "topic": "Bad Topic!"}, seq=106))
    assert bad_topic["status"] == "FAILED"


def test_two_racing_deliveries_of_a_memory_step_store_one_memory(store, dynamodb):
    # Both deliveries miss the step's record and both run: the memory's key is made of the
    # run's start and the step's idempotency key, so the second run stores nothing and
    # returns the first memory, in one conditional PutItem each.
    from handlers.tools.memory import MemoryInput, run

    tool = load_tool("memory")
    request = MemoryInput(action="remember", topic="travel", text="window seat")
    first_output = run(context(store), request)
    second_output = run(context(store), request)
    assert second_output == first_output
    memories = dynamodb.query(
        TableName=TABLE_NAME,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :mem)",
        ExpressionAttributeValues={":pk": {"S": "USER#alice"}, ":mem": {"S": "MEM#"}},
    )["Items"]
    assert len(memories) == 1
    assert memories[0]["SK"]["S"].startswith(f"MEM#travel#{STARTED_AT_MS:013d}-00101-")
    store.tool_runs.record("exec-1", 101, "memory", status="SUCCEEDED", input={}, output=first_output)
    result = tool.execute(context(store), {"action": "remember", "topic": "travel", "text": "window seat"}, "tu-101")
    assert result["output"] == first_output and result["replayed"] is True
    memory = MemoryStore(store.table)
    assert memory.recall("alice", "travel") == memory.recall("alice", "travel", limit=1)


def test_the_started_at_of_step_functions_is_read_to_the_millisecond():
    from handlers.shared.tooling import started_at_ms

    assert started_at_ms(STARTED_AT) == STARTED_AT_MS
    assert started_at_ms("2026-11-28T09:00:00.123456+00:00") == STARTED_AT_MS
    assert started_at_ms(None) is None


def test_a_memory_without_the_runs_start_is_a_crash_not_a_guess(store):
    from handlers.tools.memory import MemoryInput, run

    undated = ToolContext(
        execution_id="exec-1", seq=101, user_id="alice", session_id="s1", correlation_id=None, store=store
    )
    with pytest.raises(ValueError, match="startedAt"):
        run(undated, MemoryInput(action="remember", topic="travel", text="window seat"))
    assert MemoryStore(store.table).recall("alice", "travel") == []


def test_large_results_travel_by_reference(store):
    import msgspec

    from handlers.shared.tooling import INLINE_RESULT_BYTES, ToolDefinition

    class Empty(msgspec.Struct):
        pass

    big = ToolDefinition(
        "bigtool", "returns a lot", Empty, run=lambda ctx, _: {"data": "x" * (INLINE_RESULT_BYTES * 4)}
    )
    result = big.execute(context(store), {}, "tu-1")
    assert "output" not in result
    assert result["outputRef"] == {"executionId": "exec-1", "seq": 101, "name": "bigtool"}
    assert len(result["preview"]) <= 1_000
    (record,) = store.tool_runs.get_many([("exec-1", 101, "bigtool")])
    assert len(record.output["data"]) == INLINE_RESULT_BYTES * 4


def test_a_transient_failure_is_raised_for_step_functions_to_retry_and_not_recorded(store):
    import msgspec

    from handlers.shared.tooling import ToolDefinition

    class Empty(msgspec.Struct):
        pass

    calls = []

    def flaky(ctx, _):
        calls.append(1)
        if len(calls) == 1:
            raise ToolTransientError("dependency throttled")
        return {"ok": True}

    tool = ToolDefinition("flaky", "sometimes fails", Empty, run=flaky)
    with pytest.raises(ToolTransientError):
        tool.execute(context(store), {}, "tu")
    assert store.tool_runs.get("exec-1", 101, "flaky") is None
    assert tool.execute(context(store), {}, "tu")["output"] == {"ok": True}


def test_a_tool_lambda_refuses_another_tools_event(lambda_env):
    with pytest.raises(ValueError, match="this Lambda runs tool 'calculator', not 'memory'"):
        load_tool("calculator").lambda_handler(event("memory", {}))
