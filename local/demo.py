"""A scripted conversation against the running local stack (``make dev`` first).

    python -m local.demo                     (make demo: approves the ticket itself, and says so)
    python -m local.demo --approve manual    (make demo APPROVE=manual: waits for a human)
    python -m local.demo approve <id>        (make approve APPROVAL=<id>)

It shows a direct answer, a tool call, a two-step tool plan, a task whose ticket waits for
an approval, a failure that is compensated, and a long task whose Fargate Spot container is
interrupted once and resumes, printing what happened at each step and,
at the end, the items left in the table. By default it grants the approval itself, so it
finishes on its own; with ``--approve manual`` it waits (``--approval-timeout`` seconds, 300
by default) for someone to run ``make approve`` in another terminal, and says what to do if
nobody does.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

import requests

STATE_FILE = Path(__file__).resolve().parent.parent / "build" / "local-stack.json"


class DemoStopped(Exception):
    """The demo cannot go on; the message says why and what to do (no traceback)."""


class Client:
    def __init__(self, state: dict[str, str]) -> None:
        self.base = state["rest"]
        self.headers = {
            "Authorization": f"Bearer {state['token']}",
            "x-api-key": state["apiKey"],
            "content-type": "application/json",
        }
        self.moto = state.get("moto")
        self.spot_trigger = Path(state["spotInterruption"]) if state.get("spotInterruption") else None

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        response = requests.request(
            method, self.base + path, headers=self.headers, data=json.dumps(body) if body else None, timeout=60
        )
        return response.status_code, response.json() if response.content else {}

    def task_when(self, task_id: str, done, timeout: float = 300.0) -> dict | None:
        """The task's body once ``done(body)``; None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            _, body = self.call("GET", f"/v1/tasks/{task_id}")
            if done(body):
                return body
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.25)


def show(title: str, status: int, body: dict) -> None:
    print(f"\n== {title}  [HTTP {status}]")
    if "answer" in body:
        print(f"   answer: {body['answer']}")
    for call in body.get("toolCalls") or []:
        print(f"   tool {call['name']}({json.dumps(call['input'])}) -> {call['status']}: {json.dumps(call['output'])}")
    if "answer" not in body:
        print("   " + json.dumps(body))


def load_state() -> dict[str, str]:
    if not STATE_FILE.exists():
        sys.exit("the local stack is not running: start it with `make dev` in another terminal")
    return json.loads(STATE_FILE.read_text())


def run_demo(client: Client, auto_approve: bool = True, approval_timeout: float = 300.0) -> int:
    """The scripted conversation. ``auto_approve``: grant the ticket's approval here (and say
    so); otherwise wait up to ``approval_timeout`` seconds for ``make approve``. Raises
    :class:`DemoStopped` when it cannot go on."""
    session = f"demo-{uuid.uuid4().hex[:6]}"
    show(
        "1. a direct answer",
        *client.call("POST", f"/v1/sessions/{session}/messages", {"message": "hello, who are you?"}),
    )
    show("2. a tool call", *client.call("POST", f"/v1/sessions/{session}/messages", {"message": "calculate (17+25)*2"}))
    show(
        "3. a two-step tool plan",
        *client.call(
            "POST", f"/v1/sessions/{session}/messages", {"message": "calculate 6*7 and remember it as answer"}
        ),
    )

    status, started = client.call(
        "POST", "/v1/tasks", {"message": "open a ticket: printer on fire", "sessionId": session}
    )
    show("4. a task that needs an approval", status, started)
    task_id = started["taskId"]
    asked = client.task_when(task_id, lambda b: b.get("pendingApproval"), timeout=30)
    if asked is None:
        raise DemoStopped(f"task {task_id} never asked for its approval (30 s): see the make dev terminal's log")
    pending = asked["pendingApproval"]
    approval = pending["approvalId"]
    print(f"   the task waits for a human to approve {pending['tool']}({json.dumps(pending['input'])})")
    if auto_approve:
        print("   approving it for you (make demo APPROVE=manual waits for you to run make approve instead)")
        show("   approved", *client.call("POST", f"/v1/approvals/{approval}", {"decision": "approve"}))
    else:
        print(f"   in another terminal run:  make approve APPROVAL={approval}")
        print(f"   waiting up to {approval_timeout:g} s for the decision ...", flush=True)
    decided = client.task_when(
        task_id, lambda b: b["status"] != "RUNNING", timeout=60 if auto_approve else approval_timeout
    )
    if decided is None and auto_approve:
        raise DemoStopped(f"task {task_id} did not end in 60 s after its approval: see the make dev terminal's log")
    if decided is None:
        raise DemoStopped(
            f"no decision on approval {approval} after {approval_timeout:g} s; the task is still waiting for it.\n"
            f"  Approve it later with:  make approve APPROVAL={approval}\n"
            "  or run the demo without waiting:  make demo   (it approves for you)"
        )
    show("   the task, once decided", 200, decided)

    status, doomed = client.call(
        "POST", "/v1/tasks", {"message": "open a ticket: temporary one, then simulate an outage"}
    )
    show("5. a failure that is compensated", status, doomed)
    asked = client.task_when(doomed["taskId"], lambda b: b.get("pendingApproval"), timeout=30)
    if asked is None:
        raise DemoStopped(
            f"task {doomed['taskId']} never asked for its approval (30 s): see the make dev terminal's log"
        )
    client.call("POST", f"/v1/approvals/{asked['pendingApproval']['approvalId']}", {"decision": "approve"})
    print("   approved (by the demo); the ticket is created, then the model has an outage and the run is undone")
    ended = client.task_when(doomed["taskId"], lambda b: b["status"] != "RUNNING", timeout=60)
    if ended is None:
        raise DemoStopped(f"task {doomed['taskId']} did not end in 60 s: see the make dev terminal's log")
    show("   the task", 200, ended)

    long_task(client, session)

    print("\n== the items left in the table")
    if client.moto:
        import boto3

        dynamodb = boto3.client(
            "dynamodb",
            region_name="us-east-1",
            endpoint_url=client.moto,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto accepts any key
        )
        table = dynamodb.list_tables()["TableNames"][0]
        items = dynamodb.scan(TableName=table)["Items"]
        for item in sorted(items, key=lambda i: (i["PK"]["S"], i["SK"]["S"])):
            detail = item.get("status", item.get("role", {})).get("S", "")
            print(f"   {item['PK']['S']:<46} {item['SK']['S']:<32} {detail}")
    return 0


DOCUMENTS = ("https://example.com/", "https://example.org/")


def long_task(client: Client, session: str) -> None:
    """A task whose tool runs in a container on Fargate Spot (summarize_documents), its first
    run interrupted as Spot interrupts one (SIGTERM, StopCode SpotInterruption), then run again
    by the task, which resumes from the run's checkpoint. Without network the documents are
    reported unreachable; the interruption and the resumed run happen all the same."""
    if client.spot_trigger is None:
        print("\n6. a long task: skipped (the stack's state file names no spot-interruption trigger)")
        return
    client.spot_trigger.write_text(json.dumps({"afterItems": 0}))
    status, started = client.call(
        "POST", "/v1/tasks", {"message": "summarize " + " ".join(DOCUMENTS), "sessionId": session}
    )
    show("6. a long task on Fargate Spot, interrupted once", status, started)
    ended = client.task_when(started["taskId"], lambda b: b["status"] != "RUNNING", timeout=120)
    if ended is None:
        raise DemoStopped(f"task {started['taskId']} did not end in 120 s: see the make dev terminal's log")
    if client.spot_trigger.exists():
        raise DemoStopped("the interruption was never used: the task ran no Fargate Spot container")
    runs = container_runs(client, started["taskId"])
    if runs:
        print("   its container, run by run: " + "; ".join(runs))
    show("   the task, resumed and done", 200, ended)


def container_runs(client: Client, task_id: str) -> list[str]:
    """How each of the task's container runs ended, from its execution's history (moto)."""
    if not client.moto:
        return []
    import boto3

    states = boto3.client(
        "stepfunctions",
        region_name="us-east-1",
        endpoint_url=client.moto,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - moto accepts any key
    )
    machines = [m["stateMachineArn"] for m in states.list_state_machines()["stateMachines"]]
    for machine in machines:
        execution = machine.replace(":stateMachine:", ":execution:") + f":{task_id}"
        try:
            events = states.get_execution_history(executionArn=execution, maxResults=1000)["events"]
        except states.exceptions.ExecutionDoesNotExist:
            continue
        runs = []
        for event in events:
            if event["type"] == "TaskFailed" and "SpotInterruption" in event["taskFailedEventDetails"].get("cause", ""):
                runs.append("interrupted (StopCode SpotInterruption)")
            elif event["type"] == "TaskSucceeded" and "ecs" in event["taskSucceededEventDetails"]["resourceType"]:
                runs.append("completed")
        return runs
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="demo", choices=["demo", "approve"])
    parser.add_argument("approval_id", nargs="?")
    parser.add_argument(
        "--approve",
        choices=["auto", "manual"],
        default="auto",
        help="auto: the demo grants the approval itself (default); manual: wait for `make approve`",
    )
    parser.add_argument("--approval-timeout", type=float, default=300.0, help="seconds to wait with --approve manual")
    args = parser.parse_args(argv)
    client = Client(load_state())
    try:
        if args.command == "approve":
            if not args.approval_id:
                parser.error("approve needs the approval id the demo printed (make approve APPROVAL=<id>)")
            status, body = client.call("POST", f"/v1/approvals/{args.approval_id}", {"decision": "approve"})
            show(f"approve {args.approval_id}", status, body)
            return 0 if status == 200 else 1
        return run_demo(client, auto_approve=args.approve == "auto", approval_timeout=args.approval_timeout)
    except DemoStopped as stopped:
        print(f"\nmake demo: {stopped}", file=sys.stderr)
        return 1
    except requests.ConnectionError:
        print(
            f"make demo: the local stack at {client.base} does not answer: start it with `make dev`"
            " in another terminal (or remove build/local-stack.json, left by a stack that did not stop)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
