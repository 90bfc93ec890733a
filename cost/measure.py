"""Measure what a chat turn does, on the real local stack (``local/stack.py``).

Everything here is counted while real turns run through the local stack: the REST API
served from the deployed OpenAPI document, the real turn state machine in moto's
interpreter (through the Step Functions adapter), every Lambda the real handler, the
DynamoDB requests of the real state store. Nothing is estimated here; the arithmetic that
turns these counts into dollars is ``cost.services``'.

For each kind of turn (a direct answer; one call of the pure ``calculator`` tool; one call
of the stateful ``memory`` tool) one session of ``session_turns`` turns is run, the state
store's clock moved ``turn_interval_s`` forward before each turn, so a session's first turn
(which creates the session's metadata) and the every-10-minutes refresh of its place in
the recent-sessions index happen as often as they would in such a session. Per turn:

- DynamoDB: every request the table sees (a botocore hook on the stack's client), the size
  of every item written (DynamoDB's item-size rules, ``cost.services.dynamodb.item_size``) and read,
  whether the write was transactional, created a new item (which TTL later deletes), or
  moved an item in GSI1;
- Lambda: invocations per function (the dispatcher moto's interpreter calls), and each
  invocation's time in the handler with the time of its DynamoDB calls taken out;
- Step Functions: the execution's history (states entered, Task states, model calls) and
  the bytes its events would log at each log level;
- logs: the bytes the handlers write to stdout (Lambda ships them to CloudWatch Logs);
- the authorizer: invocations for a token's first turn and for its later turns.

A WebSocket session is measured the same way: frames the client receives per turn and the
functions a streamed turn invokes (``agent-stream`` reads the model's stream).
"""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import json
import os
import statistics
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cost.lines import DAYS_PER_MONTH
from cost.services.dynamodb import ceil_units, item_size
from cost.services.stepfunctions import sfn_log_bytes
from cost.turn import Assumptions, TurnProfile

# What a turn stores is sized like a real one, not like the stand-in model's short echo: a
# direct turn's message and every final answer are as long as the report's assumptions say
# (cost.turn.Assumptions: message_chars, reply_chars). The text is English prose (the start
# of this project's README as it was in December 2026, kept in prose.txt so that editing the
# docs does not move the measurement), so items compress and size as an answer would.
PROSE_PATH = Path(__file__).with_name("prose.txt")

MESSAGES = {
    "direct": "hello, how are you today?",
    "tool": "calculate 6*7",
    "memory": "remember that cost: every turn counts",
}
DESCRIPTIONS = {
    "direct": "direct answer",
    "tool": "one tool call (calculator, pure)",
    "memory": "one tool call (memory, stateful)",
    "websocket": "direct answer over WebSocket",
}
GSI_KEYS = ("GSI1PK", "GSI1SK")
TTL_ATTRIBUTE = "expiresAt"
MONTH_SECONDS = DAYS_PER_MONTH * 86400
# DynamoDB adds 100 bytes of overhead per item to the storage it bills
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html).
STORAGE_OVERHEAD_BYTES = 100


@dataclass
class _Write:
    size: int
    transactional: bool
    new: bool
    gsi: bool
    gsi_moved: bool
    ttl_seconds: float


@dataclass
class _TurnRecord:
    requests: Counter
    writes: list[_Write]
    read_units: float
    invocations: Counter
    log_bytes: int
    emf: set
    frames: int = 0


class _Recorder:
    """Hooks on the stack's DynamoDB client and dispatcher; one ``_TurnRecord`` per turn."""

    def __init__(self, stack: Any, clock: Callable[[], float]) -> None:
        self.stack = stack
        self.clock = clock
        self.local = threading.local()
        self.lock = threading.Lock()
        self.handler_ms: dict[str, list[float]] = defaultdict(list)
        self.ddb_per_invocation: dict[str, list[int]] = defaultdict(list)
        self.turn: _TurnRecord | None = None
        self.updates: list[dict[str, Any]] = []
        self.paused = False
        events = stack.dynamodb.meta.events
        events.register("provide-client-params.dynamodb", self._before)
        events.register("after-call.dynamodb", self._after)
        for name, handler in list(stack.dispatcher.handlers.items()):
            stack.dispatcher.handlers[name] = self._timed(name, handler)
        self.authorizer_calls = 0
        rest = stack.rest_api
        original = rest.authorizer

        def authorizer(event: dict, context: Any = None) -> Any:
            with self.lock:
                self.authorizer_calls += 1
            return self._timed("authorizer", lambda e, c: original(e))(event, context)

        rest.authorizer = authorizer
        websocket = stack.websocket
        connection = websocket.connection_handler
        websocket.connection_handler = self._timed("connection", lambda e, c=None: connection(e))

    # -- Lambda --------------------------------------------------------------------------

    def _timed(self, name: str, handler: Callable) -> Callable:
        def run(event: dict, context: Any = None) -> Any:
            state = self.local
            outer = getattr(state, "frame", None)
            state.frame = {"ddb_s": 0.0, "ddb_calls": 0}
            started = time.perf_counter()
            try:
                return handler(event, context)
            finally:
                elapsed = time.perf_counter() - started
                frame = state.frame
                state.frame = outer
                with self.lock:
                    self.handler_ms[name].append(max(0.0, (elapsed - frame["ddb_s"]) * 1000))
                    self.ddb_per_invocation[name].append(frame["ddb_calls"])
                    if self.turn is not None:
                        self.turn.invocations[name] += 1

        return run

    # -- DynamoDB ------------------------------------------------------------------------

    def _before(self, params: dict, model: Any, **_: Any) -> None:
        if self.paused:
            return
        self.local.call = (model.name, copy.deepcopy(params), time.perf_counter())

    def _after(self, http_response: Any, parsed: dict, model: Any, **_: Any) -> None:
        if self.paused:
            return
        name, params, started = self.local.call
        frame = getattr(self.local, "frame", None)
        if frame is not None:
            frame["ddb_s"] += time.perf_counter() - started
            frame["ddb_calls"] += 1
        with self.lock:
            if self.turn is not None:
                self.turn.requests[name] += 1
                self._account(name, params, parsed)

    def _account(self, name: str, params: dict, parsed: dict) -> None:
        turn = self.turn
        now = self.clock()
        if name == "PutItem":
            turn.writes.append(self._put(params["Item"], False, now, params))
        elif name == "TransactWriteItems":
            for entry in params["TransactItems"]:
                if "Put" in entry:
                    turn.writes.append(self._put(entry["Put"]["Item"], True, now, entry["Put"]))
                elif "Update" in entry:
                    self.updates.append({"key": entry["Update"]["Key"], "transactional": True, "update": entry})
        elif name == "UpdateItem":
            self.updates.append({"key": params["Key"], "transactional": False, "update": params})
        elif name in ("Query", "GetItem", "BatchGetItem"):
            items = parsed.get("Items") or ([parsed["Item"]] if "Item" in parsed else [])
            if name == "BatchGetItem":
                items = [i for table in (parsed.get("Responses") or {}).values() for i in table]
            consistent = bool(params.get("ConsistentRead"))
            size = sum(item_size(i) for i in items)
            # A Query is billed on the items it reads, rounded up to 4 KB as a whole; a GetItem
            # (or each item of a batch) on its own size; an empty answer still costs one unit
            # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html).
            per_item = name != "Query"
            units = sum(ceil_units(item_size(i), 4096) for i in items) if per_item and items else ceil_units(size, 4096)
            turn.read_units += units * (1.0 if consistent else 0.5)

    @staticmethod
    def _put(item: dict, transactional: bool, now: float, request: dict) -> _Write:
        expires = float(item.get(TTL_ATTRIBUTE, {}).get("N", "0") or 0)
        condition = request.get("ConditionExpression", "")
        return _Write(
            size=item_size(item),
            transactional=transactional,
            new="attribute_not_exists" in condition,
            gsi=all(k in item for k in GSI_KEYS),
            gsi_moved=False,
            ttl_seconds=max(0.0, expires - now),
        )

    def settle_updates(self) -> None:
        """UpdateItem is billed on the larger of the item before and after: read the item
        after the turn (not counted) and record the write; an update that changes GSI1SK
        moves the item in the index (a delete and a put there)."""
        self.paused = True
        try:
            for update in self.updates:
                got = self.stack.dynamodb.get_item(TableName=self.stack.table_name, Key=update["key"])
                item = got.get("Item", {})
                body = update["update"].get("Update", update["update"])
                moved = "#gsk" in body.get("ExpressionAttributeNames", {})
                self.turn.writes.append(
                    _Write(
                        size=item_size(item),
                        transactional=update["transactional"],
                        new=False,
                        gsi=all(k in item for k in GSI_KEYS),
                        gsi_moved=moved,
                        ttl_seconds=0.0,
                    )
                )
        finally:
            self.updates.clear()
            self.paused = False

    @contextlib.contextmanager
    def turn_window(self) -> Iterator[_TurnRecord]:
        record = _TurnRecord(Counter(), [], 0.0, Counter(), 0, set())
        out = io.StringIO()
        with self.lock:
            self.turn = record
        try:
            with contextlib.redirect_stdout(out):
                yield record
            self.settle_updates()
        finally:
            with self.lock:
                self.turn = None
        text = out.getvalue()
        record.log_bytes = len(text.encode())
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                document = json.loads(line)
                for directive in (document.get("_aws") or {}).get("CloudWatchMetrics", []):
                    for metric in directive.get("Metrics", []):
                        dims = tuple(sorted(d for group in directive.get("Dimensions", []) for d in group))
                        record.emf.add((directive["Namespace"], metric["Name"], dims))


@dataclass(frozen=True)
class Measurement:
    stack: str
    session_turns: int
    turn_interval_s: float
    profiles: dict[str, TurnProfile]
    emf_metrics: int
    """Distinct custom metrics (namespace, name, dimension keys) the turns emitted (EMF)."""
    authorizer_first_turn: int
    """Authorizer invocations for a token's first turn."""
    authorizer_later_turns: int
    """Authorizer invocations for the same token's later turns (within the cache TTL)."""


def _profile(
    kind: str,
    records: list[_TurnRecord],
    histories: list[dict],
    recorder: _Recorder,
    session_turns: int,
    interval: float,
) -> TurnProfile:
    n = len(records)

    def per_turn(values) -> float:
        return sum(values) / n

    writes = [w for r in records for w in r.writes]
    invocations = Counter()
    for r in records:
        invocations.update(r.invocations)
    # API Gateway calls the authorizer, once per token and cache TTL: cost.services counts it from
    # the TTL the program sets; only its handler time is taken from here.
    invocations.pop("authorizer", None)
    requests = Counter()
    for r in records:
        requests.update(r.requests)
    functions = sorted(invocations)
    states = [e for h in histories for e in h["events"]]
    types = [str(getattr(e["type"], "value", e["type"])) for e in states]
    return TurnProfile(
        kind=kind,
        description=DESCRIPTIONS[kind],
        turns=n,
        session_turns=session_turns,
        turn_interval_s=interval,
        states_entered=sum(t.endswith("StateEntered") for t in types) / max(1, len(histories)),
        task_states=sum(t == "TaskStateEntered" for t in types) / max(1, len(histories)),
        # The state machine's own model calls (the SDK integration or the HTTP Task), and the
        # stream function's (a WebSocket turn's).
        model_calls=(
            sum(
                1
                for h in histories
                for e in h["events"]
                if str(getattr(e["type"], "value", e["type"])) == "TaskScheduled"
                and any(
                    s in json.dumps(e.get("taskScheduledEventDetails", {}), default=str)
                    for s in ("bedrockruntime", "http:invoke", '"http"')
                )
            )
            + invocations["agent-stream"]
        )
        / n,
        invocations={f: invocations[f] / n for f in functions},
        handler_ms={
            f: statistics.median(recorder.handler_ms[f]) for f in (*functions, "authorizer") if recorder.handler_ms[f]
        },
        dynamodb_calls={f: statistics.mean(recorder.ddb_per_invocation[f]) for f in functions},
        dynamodb_requests={op: c / n for op, c in sorted(requests.items())},
        write_units=per_turn(ceil_units(w.size, 1024) * (2 if w.transactional else 1) for w in writes),
        replica_write_units=per_turn(ceil_units(w.size, 1024) for w in writes),
        gsi_write_units=per_turn(ceil_units(w.size, 1024) * (2 if w.gsi_moved else 1) for w in writes if w.gsi),
        read_units=per_turn(r.read_units for r in records),
        new_items=per_turn(1 for w in writes if w.new),
        ttl_delete_units=per_turn(ceil_units(w.size, 1024) for w in writes if w.new),
        gsi_ttl_delete_units=per_turn(ceil_units(w.size, 1024) for w in writes if w.new and w.gsi),
        table_byte_months=per_turn(
            (w.size + STORAGE_OVERHEAD_BYTES) * w.ttl_seconds / MONTH_SECONDS for w in writes if w.new
        ),
        gsi_byte_months=per_turn(
            (w.size + STORAGE_OVERHEAD_BYTES) * w.ttl_seconds / MONTH_SECONDS for w in writes if w.new and w.gsi
        ),
        written_bytes=per_turn(w.size for w in writes),
        item_sizes=tuple(sorted({w.size for w in writes})),
        lambda_log_bytes=per_turn(r.log_bytes for r in records),
        sfn_log_bytes={
            (level, data): sfn_log_bytes(histories, level, data) / max(1, len(histories))
            for level, data in (("ALL", True), ("ALL", False), ("ERROR", False), ("FATAL", False), ("OFF", False))
        }
        if histories
        else {},
        websocket_frames=per_turn(r.frames for r in records),
    )


def prose(chars: int, offset: int = 0) -> str:
    """``chars`` characters of English prose, from ``offset`` on (wrapping around)."""
    text = " ".join(PROSE_PATH.read_text().split())
    start = offset % len(text)
    return ((text[start:] + " " + text) * (1 + chars // len(text)))[:chars]


def sized_answers(decide: Callable[[dict], Any], reply_chars: int) -> Callable[[dict], Any]:
    """The stand-in model's rules, with every final answer lengthened to ``reply_chars``."""
    calls = itertools.count()

    def sized(request: dict) -> Any:
        answer = decide(request)
        if not isinstance(answer, dict) or answer.get("stopReason") != "end_turn":
            return answer
        answer = copy.deepcopy(answer)
        for block in answer["output"]["message"]["content"]:
            if "text" in block and len(block["text"]) < reply_chars:
                block["text"] += " " + prose(reply_chars - len(block["text"]) - 1, next(calls) * 997)
        return answer

    return sized


def direct_message(message_chars: int) -> str:
    base = MESSAGES["direct"]
    return base if message_chars <= len(base) else base + " " + prose(message_chars - len(base) - 1, 4242)


def measure(
    stack_name: str = "dev",
    session_turns: int = 10,
    turn_interval_s: float = 90.0,
    message_chars: int = Assumptions().message_chars,
    reply_chars: int = Assumptions().reply_chars,
) -> Measurement:
    """Run the sessions on a fresh local stack and return the per-turn profiles. The direct
    turns' messages are ``message_chars`` long and every final answer ``reply_chars``."""
    import logging

    import requests

    from local.stack import LocalStack

    if session_turns < 1:
        raise ValueError("session_turns must be at least 1")
    previous = os.environ.pop("AGENT_LLM_PROVIDER", None)  # the local stand-in model, always
    logging.disable(logging.CRITICAL)
    stack = LocalStack(stack_name, moto_port=None, log=lambda entry: None, throttle=(10_000, 10_000)).start()
    messages = {**MESSAGES, "direct": direct_message(message_chars)}
    try:
        stack.model_server.server.decide = sized_answers(stack.model_server.server.decide, reply_chars)
        now = {"t": time.time()}

        def clock() -> float:
            return now["t"]

        stack.store.table.clock = clock
        recorder = _Recorder(stack, clock)
        session = requests.Session()
        profiles: dict[str, TurnProfile] = {}
        emf: set = set()
        auth_first = auth_later = 0
        for index, kind in enumerate(MESSAGES):
            token = stack.issuer.token(user=f"cost-{kind}")
            headers = {
                "Authorization": f"Bearer {token}",
                "x-api-key": stack.api_key,
                "content-type": "application/json",
            }
            session_id = f"cost-{kind}-{uuid.uuid4().hex[:8]}"
            records, histories = [], []
            for turn in range(session_turns):
                now["t"] += turn_interval_s
                before_auth = recorder.authorizer_calls
                with recorder.turn_window() as record:
                    answer = session.post(
                        f"{stack.rest.url}/v1/sessions/{session_id}/messages",
                        headers=headers,
                        data=json.dumps({"message": messages[kind]}),
                        timeout=60,
                    )
                if answer.status_code != 200:
                    raise RuntimeError(f"{kind} turn {turn + 1} answered {answer.status_code}: {answer.text[:300]}")
                if index == 0:
                    if turn == 0:
                        auth_first = recorder.authorizer_calls - before_auth
                    else:
                        auth_later = max(auth_later, recorder.authorizer_calls - before_auth)
                records.append(record)
                histories.append(stack.adapter.sync_executions[-1].to_history_output())
                emf |= record.emf
            profiles[kind] = _profile(kind, records, histories, recorder, session_turns, turn_interval_s)
        profiles["websocket"] = _measure_websocket(
            stack, recorder, clock, now, session_turns, turn_interval_s, messages["direct"]
        )
        return Measurement(
            stack=stack_name,
            session_turns=session_turns,
            turn_interval_s=turn_interval_s,
            profiles=profiles,
            emf_metrics=len(emf),
            authorizer_first_turn=auth_first,
            authorizer_later_turns=auth_later,
        )
    finally:
        stack.stop()
        logging.disable(logging.NOTSET)
        if previous is not None:
            os.environ["AGENT_LLM_PROVIDER"] = previous


def _measure_websocket(
    stack: Any,
    recorder: _Recorder,
    clock: Callable[[], float],
    now: dict,
    session_turns: int,
    interval: float,
    message: str,
) -> TurnProfile:
    """One connection, ``session_turns`` streamed turns: frames received and functions run."""
    from websockets.sync.client import connect

    token = stack.issuer.token(user="cost-websocket")
    session_id = f"cost-ws-{uuid.uuid4().hex[:8]}"
    records, histories = [], []
    with connect(f"{stack.websocket.url}/?token={token}", open_timeout=10) as ws:
        for _ in range(session_turns):
            now["t"] += interval
            known = {e.name for e in _executions(stack)}
            with recorder.turn_window() as record:
                ws.send(json.dumps({"action": "sendMessage", "sessionId": session_id, "message": message}))
                frames = []
                while not frames or frames[-1].get("type") != "final" or not frames[-1].get("done"):
                    frames.append(json.loads(ws.recv(timeout=30)))
                record.frames = len(frames)
                execution = _wait_new_execution(stack, known)
            records.append(record)
            histories.append({"events": stack.sfn.get_execution_history(executionArn=execution.arn)["events"]})
    return _profile("websocket", records, histories, recorder, session_turns, interval)


@dataclass(frozen=True)
class _Execution:
    name: str
    arn: str


def _executions(stack: Any) -> list[_Execution]:
    listed = stack.sfn.list_executions(stateMachineArn=stack.turn_arn)["executions"]
    return [_Execution(e["name"], e["executionArn"]) for e in listed if e["status"] != "RUNNING"]


def _wait_new_execution(stack: Any, known: set[str], timeout: float = 30.0) -> _Execution:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = [e for e in _executions(stack) if e.name not in known]
        if fresh:
            return fresh[0]
        time.sleep(0.02)
    raise TimeoutError("the streamed turn's execution did not finish")
