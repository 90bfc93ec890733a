"""A scripted conversation against the running local stack (``make dev`` first).

    python -m local.demo                     (make demo)
    python -m local.demo approve <id>        (make approve APPROVAL=<id>)

It shows a direct answer, a tool call, a two-step tool plan, a task whose ticket waits for
an approval that a second command grants, and a failure that is compensated, printing what
happened at each step and, at the end, the items left in the table.
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


class Client:
    def __init__(self, state: dict[str, str]) -> None:
        self.base = state["rest"]
        self.headers = {
            "Authorization": f"Bearer {state['token']}",
            "x-api-key": state["apiKey"],
            "content-type": "application/json",
        }
        self.moto = state.get("moto")

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        response = requests.request(
            method, self.base + path, headers=self.headers, data=json.dumps(body) if body else None, timeout=60
        )
        return response.status_code, response.json() if response.content else {}

    def task_when(self, task_id: str, done, timeout: float = 300.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, body = self.call("GET", f"/v1/tasks/{task_id}")
            if done(body):
                return body
            time.sleep(0.25)
        raise TimeoutError(f"task {task_id} did not get there in {timeout:g}s")


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


def run_demo(client: Client, auto_approve: bool) -> int:
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
    pending = client.task_when(started["taskId"], lambda b: b.get("pendingApproval"), timeout=30)["pendingApproval"]
    approval = pending["approvalId"]
    print(f"   waiting for a human to approve {pending['tool']}({json.dumps(pending['input'])})")
    if auto_approve:
        show(
            "   approving it (--auto-approve)",
            *client.call("POST", f"/v1/approvals/{approval}", {"decision": "approve"}),
        )
    else:
        print(f"   in another terminal run:  make approve APPROVAL={approval}")
    show("   the task, once decided", 200, client.task_when(started["taskId"], lambda b: b["status"] != "RUNNING"))

    status, doomed = client.call(
        "POST", "/v1/tasks", {"message": "open a ticket: temporary one, then simulate an outage"}
    )
    show("5. a failure that is compensated", status, doomed)
    pending = client.task_when(doomed["taskId"], lambda b: b.get("pendingApproval"), timeout=30)["pendingApproval"]
    client.call("POST", f"/v1/approvals/{pending['approvalId']}", {"decision": "approve"})
    print("   approved; the ticket is created, then the model has an outage and the run is undone")
    show("   the task", 200, client.task_when(doomed["taskId"], lambda b: b["status"] != "RUNNING"))

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="demo", choices=["demo", "approve"])
    parser.add_argument("approval_id", nargs="?")
    parser.add_argument("--auto-approve", action="store_true", help="approve the ticket itself instead of waiting")
    args = parser.parse_args(argv)
    client = Client(load_state())
    if args.command == "approve":
        if not args.approval_id:
            parser.error("approve needs the approval id the demo printed")
        status, body = client.call("POST", f"/v1/approvals/{args.approval_id}", {"decision": "approve"})
        show(f"approve {args.approval_id}", status, body)
        return 0 if status == 200 else 1
    return run_demo(client, args.auto_approve)


if __name__ == "__main__":
    sys.exit(main())
