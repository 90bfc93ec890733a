"""local/stepfunctions_adapter.py: StartSyncExecution, SendTaskFailure's cause and JSONata on moto's
interpreter, through boto3."""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from local.stepfunctions import MOTO_CONFIG, LambdaDispatcher, dispatching, wait_for_execution
from local.stepfunctions_adapter import SYNC_CLIENT_CONFIG, StepFunctionsAdapter
from tests.conftest import REGION

ACCOUNT = "123456789012"


class Aws:
    """moto with the adapter installed, a role, a Step Functions client, a Lambda dispatcher."""

    def __init__(self, adapter: StepFunctionsAdapter, dispatcher: LambdaDispatcher) -> None:
        self.adapter = adapter
        self.dispatcher = dispatcher
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.role = boto3.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        self.calls: list[str] = []
        self.sfn.meta.events.register("before-call.sfn.*", lambda model, **_: self.calls.append(model.name))

    def machine(self, definition: dict[str, Any], kind: str = "EXPRESS", name: str = "m") -> str:
        return self.sfn.create_state_machine(
            name=name, definition=json.dumps(definition), roleArn=self.role, type=kind
        )["stateMachineArn"]

    def run(self, definition: dict[str, Any], execution_input: Any = None, **kwargs: Any) -> dict[str, Any]:
        arn = self.machine(definition)
        return self.sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps(execution_input or {}), **kwargs)


@pytest.fixture
def aws(aws_credentials):
    with (
        mock_aws(config=MOTO_CONFIG),
        StepFunctionsAdapter() as adapter,
        dispatching(LambdaDispatcher()) as dispatcher,
    ):
        yield Aws(adapter, dispatcher)


def lambda_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


PASS = {"StartAt": "Answer", "States": {"Answer": {"Type": "Pass", "Result": {"answer": 42}, "End": True}}}


# --- StartSyncExecution ---------------------------------------------------------------------------


def test_sync_execution_succeeds_with_awss_response_shape(aws):
    arn = aws.machine(PASS)
    answer = aws.sfn.start_sync_execution(
        stateMachineArn=arn,
        name="turn-1",
        input='{"question": "?"}',
        traceHeader="Root=1-5759e988-bd862e3fe1be46a994272793",
    )
    assert answer["status"] == "SUCCEEDED"
    assert json.loads(answer["output"]) == {"answer": 42}
    assert answer["name"] == "turn-1" and answer["stateMachineArn"] == arn
    assert answer["executionArn"].startswith(f"arn:aws:states:{REGION}:{ACCOUNT}:express:m:turn-1:")
    assert json.loads(answer["input"]) == {"question": "?"}
    assert answer["inputDetails"] == {"included": True} and answer["outputDetails"] == {"included": True}
    assert answer["traceHeader"] == "Root=1-5759e988-bd862e3fe1be46a994272793"
    assert answer["startDate"] <= answer["stopDate"]
    assert answer["billingDetails"]["billedMemoryUsedInMB"] == 64
    assert answer["billingDetails"]["billedDurationInMilliseconds"] % 100 == 0
    assert "error" not in answer and "cause" not in answer


def test_sync_execution_returns_the_end_in_one_call_without_polling(aws):
    waits = {
        "StartAt": "Pause",
        "States": {"Pause": {"Type": "Wait", "Seconds": 1, "Next": "Done"}, "Done": {"Type": "Succeed"}},
    }
    answer = aws.run(waits, {"k": "v"})
    assert answer["status"] == "SUCCEEDED" and json.loads(answer["output"]) == {"k": "v"}
    assert aws.calls == ["CreateStateMachine", "StartSyncExecution"], "one call, no DescribeExecution"


def test_sync_execution_names_it_when_no_name_is_given(aws):
    first, second = aws.sfn.start_sync_execution(stateMachineArn=aws.machine(PASS)), None
    second = aws.sfn.start_sync_execution(stateMachineArn=first["stateMachineArn"])
    assert first["name"] != second["name"] and len(first["name"]) == 36
    assert json.loads(first["input"]) == {}


def test_express_names_can_be_reused_at_once(aws):
    arn = aws.machine(PASS)
    runs = [aws.sfn.start_sync_execution(stateMachineArn=arn, name="same", input="{}") for _ in range(2)]
    assert [r["status"] for r in runs] == ["SUCCEEDED", "SUCCEEDED"]
    assert runs[0]["executionArn"] != runs[1]["executionArn"]


def test_sync_execution_fails_with_the_fail_states_error_and_cause(aws):
    fail = {"StartAt": "No", "States": {"No": {"Type": "Fail", "Error": "Turn.Refused", "Cause": "over budget"}}}
    answer = aws.run(fail)
    assert (answer["status"], answer["error"], answer["cause"]) == ("FAILED", "Turn.Refused", "over budget")
    assert "output" not in answer


def test_sync_execution_fails_with_a_lambda_tasks_error(aws):
    def handler(event, context):
        raise ValueError(f"cannot handle {event['n']}")

    aws.dispatcher.register("agent-step", handler)
    task = {"StartAt": "Step", "States": {"Step": {"Type": "Task", "Resource": lambda_arn("agent-step"), "End": True}}}
    answer = aws.run(task, {"n": 7})
    assert (answer["status"], answer["error"]) == ("FAILED", "ValueError")
    cause = json.loads(answer["cause"])
    assert (cause["errorType"], cause["errorMessage"]) == ("ValueError", "cannot handle 7")
    assert aws.dispatcher.calls_to("agent-step") == [{"n": 7}]


def test_sync_execution_times_out_without_error_or_cause(aws):
    slow = {
        "TimeoutSeconds": 1,
        "StartAt": "Pause",
        "States": {"Pause": {"Type": "Wait", "Seconds": 60, "End": True}},
    }
    answer = aws.run(slow)
    assert answer["status"] == "TIMED_OUT"
    assert "error" not in answer and "cause" not in answer and "output" not in answer


def test_standard_machines_are_refused(aws):
    arn = aws.machine(PASS, kind="STANDARD")
    with pytest.raises(ClientError) as refused:
        aws.sfn.start_sync_execution(stateMachineArn=arn)
    assert refused.value.response["Error"]["Code"] == "StateMachineTypeNotSupported"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unknown_machine_and_bad_arguments_are_refused(aws):
    arn = aws.machine(PASS)
    cases = [
        ({"stateMachineArn": arn.replace(":m", ":missing")}, "StateMachineDoesNotExist"),
        ({"stateMachineArn": "not-an-arn"}, "InvalidArn"),
        ({"stateMachineArn": arn, "name": "has space"}, "InvalidName"),
        ({"stateMachineArn": arn, "name": "a/b"}, "InvalidName"),
        ({"stateMachineArn": arn, "name": "x" * 81}, "ValidationException"),
        ({"stateMachineArn": arn, "input": "{not json"}, "InvalidExecutionInput"),
    ]
    for arguments, code in cases:
        with pytest.raises(ClientError) as refused:
            aws.sfn.start_sync_execution(**arguments)
        assert refused.value.response["Error"]["Code"] == code, arguments


def test_sync_execution_over_motos_http_server(aws):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{server._server.server_port}"
        remote = boto3.client("stepfunctions", region_name=REGION, endpoint_url=url, config=SYNC_CLIENT_CONFIG)
        answer = remote.start_sync_execution(stateMachineArn=aws.machine(PASS), input="{}")
        assert answer["status"] == "SUCCEEDED" and json.loads(answer["output"]) == {"answer": 42}
        with pytest.raises(ClientError) as refused:
            remote.start_sync_execution(stateMachineArn=aws.machine(PASS, kind="STANDARD", name="s"))
        assert refused.value.response["Error"]["Code"] == "StateMachineTypeNotSupported"
    finally:
        server.stop()


def test_uninstall_takes_every_patch_back(aws_credentials):
    from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
    from moto.stepfunctions.responses import StepFunctionResponse

    with mock_aws(config=MOTO_CONFIG):
        send_task_failure = StepFunctionResponse.send_task_failure
        with StepFunctionsAdapter():
            assert moto_jsonata._eval_jsonata is not None
        assert not hasattr(StepFunctionResponse, "start_sync_execution")
        assert StepFunctionResponse.send_task_failure is send_task_failure
        assert moto_jsonata._eval_jsonata is None
        sfn = boto3.client("stepfunctions", region_name=REGION)
        with pytest.raises(ClientError):  # moto alone has no such action
            sfn.start_sync_execution(stateMachineArn=f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:m")


# --- SendTaskFailure keeps the cause ----------------------------------------------------------


def test_send_task_failure_cause_reaches_the_catch(aws):
    tokens: list[str] = []
    asked = threading.Event()

    def approval_request(event, context):
        tokens.append(event["token"])
        asked.set()
        return {}

    aws.dispatcher.register("approval-request", approval_request)
    definition = {
        "StartAt": "Ask",
        "States": {
            "Ask": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": lambda_arn("approval-request"), "Payload": {"token.$": "$$.Task.Token"}},
                "Catch": [{"ErrorEquals": ["Approval.Denied"], "ResultPath": "$.denied", "Next": "Denied"}],
                "Next": "Approved",
            },
            "Approved": {"Type": "Succeed"},
            "Denied": {"Type": "Pass", "End": True},
        },
    }
    arn = aws.machine(definition, kind="STANDARD")
    started = aws.sfn.start_execution(stateMachineArn=arn, name="ask-1", input='{"ticket": "T1"}')
    assert asked.wait(30), "the approval request was never sent"
    aws.sfn.send_task_failure(taskToken=tokens[0], error="Approval.Denied", cause="denied by bob: no budget")
    result = wait_for_execution(aws.sfn, started["executionArn"])
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == {
        "ticket": "T1",
        "denied": {"Error": "Approval.Denied", "Cause": "denied by bob: no budget"},
    }


# --- JSONata ------------------------------------------------------------------------------------


def test_a_jsonata_machine_runs_arguments_output_and_assign(aws):
    aws.dispatcher.register("echo", lambda event, context: {"seen": event})
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": lambda_arn("echo"),
                "Arguments": {"doubled": "{% $states.input.n * 2 %}", "who": "{% $uppercase($states.input.name) %}"},
                "Assign": {"said": "{% $states.input.quote %}", "total": "{% $states.result.seen.doubled + 1 %}"},
                "Output": {"fromTask": "{% $states.result.seen %}"},
                "Next": "Shape",
            },
            "Shape": {
                "Type": "Pass",
                "Output": "{% {'task': $states.input.fromTask, 'said': $said, 'total': $total, 'chars': $length($said)} %}",
                "End": True,
            },
        },
    }
    quote = 'she said "no"\nthen left \\ quietly'
    answer = aws.run(definition, {"n": 21, "name": "ada", "quote": quote})
    assert answer["status"] == "SUCCEEDED", answer.get("cause")
    assert json.loads(answer["output"]) == {
        "task": {"doubled": 42, "who": "ADA"},
        "said": quote,
        "total": 43,
        "chars": len(quote),
    }
    assert aws.dispatcher.calls_to("echo") == [{"doubled": 42, "who": "ADA"}]


def test_a_jsonata_choice_picks_its_branch(aws):
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Route",
        "States": {
            "Route": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $states.input.stop = 'tool_use' %}", "Next": "Tool"}],
                "Default": "Answer",
            },
            "Tool": {"Type": "Pass", "Output": {"next": "tool"}, "End": True},
            "Answer": {"Type": "Pass", "Output": {"next": "answer"}, "End": True},
        },
    }
    arn = aws.machine(definition)
    picked = [
        json.loads(aws.sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps({"stop": stop}))["output"])
        for stop in ("tool_use", "end_turn")
    ]
    assert picked == [{"next": "tool"}, {"next": "answer"}]
