"""local/stepfunctions/adapter.py: StartSyncExecution, SendTaskFailure's cause, JSONata, the
Bedrock Converse SDK integration and the HTTP Task, on moto's interpreter, through boto3."""

from __future__ import annotations

import concurrent.futures
import http.server
import json
import logging
import socket
import sys
import threading
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from local.bedrock.model import ScriptedModelServer
from local.stepfunctions.adapter import SYNC_CLIENT_CONFIG, StepFunctionsAdapter
from local.stepfunctions.interpreter import MOTO_CONFIG, LambdaDispatcher, dispatching, wait_for_execution
from tests.conftest import REGION

ACCOUNT = "123456789012"
SECRET = "sk-local-0123456789abcdef"


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
    import copy

    import jsonpath_ng.ext
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
    from moto.stepfunctions.parser.asl.component.common.string.string_expression import StringJSONata
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
    from moto.stepfunctions.parser.asl.eval import states
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint
    from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.utils import boto_client, json_path
    from moto.stepfunctions.responses import StepFunctionResponse

    with mock_aws(config=MOTO_CONFIG):
        send_task_failure = StepFunctionResponse.send_task_failure
        setup_heartbeat = CallbackEndpoint.setup_heartbeat_endpoint
        parse, eval_body = AmazonStateLanguageParser.parse, StringJSONata._eval_body
        state_body, error_equals = CommonStateField._eval_body, ErrorEqualsDecl._eval_body
        client_for = boto_client.boto_client_for
        with StepFunctionsAdapter():
            assert moto_jsonata._eval_jsonata is not None
            assert CallbackEndpoint.setup_heartbeat_endpoint is not setup_heartbeat
            assert AmazonStateLanguageParser.parse is not parse and StringJSONata._eval_body is not eval_body
            assert lambda_eval_utils.boto_client_for is not client_for
            assert states.copy is not copy and json_path.parse is not jsonpath_ng.ext.parse
            assert CommonStateField._eval_body is not state_body and ErrorEqualsDecl._eval_body is not error_equals
        assert not hasattr(StepFunctionResponse, "start_sync_execution")
        assert StepFunctionResponse.send_task_failure is send_task_failure
        assert CallbackEndpoint.setup_heartbeat_endpoint is setup_heartbeat
        assert moto_jsonata._eval_jsonata is None
        assert AmazonStateLanguageParser.parse is parse and StringJSONata._eval_body is eval_body
        assert lambda_eval_utils.boto_client_for is client_for is boto_client.boto_client_for
        assert states.copy is copy and json_path.parse is jsonpath_ng.ext.parse
        assert CommonStateField._eval_body is state_body and ErrorEqualsDecl._eval_body is error_equals
        sfn = boto3.client("stepfunctions", region_name=REGION)
        with pytest.raises(ClientError):  # moto alone has no such action
            sfn.start_sync_execution(stateMachineArn=f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:m")


def test_executions_parsed_in_parallel_each_keep_their_query_language(aws):
    # Found under load in the local stack: moto shares one QueryLanguage scope stack between
    # threads, so a JSONPath machine parsed beside a JSONata one failed to parse (then 500).
    jsonpath = {
        "StartAt": "Shape",
        "States": {"Shape": {"Type": "Pass", "Parameters": {"got.$": "$.n"}, "ResultPath": "$.shaped", "End": True}},
    }
    jsonata = {
        "QueryLanguage": "JSONata",
        "StartAt": "Shape",
        "States": {"Shape": {"Type": "Pass", "Output": "{% {'got': $states.input.n} %}", "End": True}},
    }
    machines = [aws.machine(jsonpath, name="path"), aws.machine(jsonata, name="nata")]
    barrier = threading.Barrier(8)

    def run(i: int) -> str:
        barrier.wait(timeout=10)
        arn = machines[i % 2]
        results = [aws.sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps({"n": n})) for n in range(15)]
        return ",".join(sorted({r["status"] + ":" + r.get("error", "") for r in results}))

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads trade places often, as under the local stack's load
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(run, range(8)))
    finally:
        sys.setswitchinterval(switch)
    assert outcomes == ["SUCCEEDED:"] * 8


def test_parses_do_not_share_a_query_language_stack(aws):
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    first, second = Preprocessor(), Preprocessor()
    first._query_language_per_scope.append("JSONata")
    assert second._query_language_per_scope == []


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


def test_a_decision_sent_before_the_task_waits_for_it_is_not_held_for_the_heartbeat(aws):
    """A human may decide while the approval request's Lambda is still running (its record is
    already readable). moto sets up the heartbeat wait only after the Lambda returns, and a
    decision sent before that would wait out HeartbeatSeconds (an hour for an approval); on AWS
    the token is valid from the moment the task starts."""

    def approval_request(event, context):
        aws.sfn.send_task_failure(taskToken=event["token"], error="Approval.Denied", cause="decided at once")
        return {}

    aws.dispatcher.register("approval-request", approval_request)
    definition = {
        "StartAt": "Ask",
        "States": {
            "Ask": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": lambda_arn("approval-request"), "Payload": {"token.$": "$$.Task.Token"}},
                "HeartbeatSeconds": 3600,
                "Catch": [{"ErrorEquals": ["Approval.Denied"], "ResultPath": "$.denied", "Next": "Denied"}],
                "Next": "Approved",
            },
            "Approved": {"Type": "Succeed"},
            "Denied": {"Type": "Pass", "End": True},
        },
    }
    arn = aws.machine(definition, kind="STANDARD")
    started = aws.sfn.start_execution(stateMachineArn=arn, name="ask-1", input="{}")
    result = wait_for_execution(aws.sfn, started["executionArn"], timeout=10)
    assert json.loads(result["output"])["denied"] == {"Error": "Approval.Denied", "Cause": "decided at once"}


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


def test_jsonata_null_is_kept_and_undefined_fails_the_state(aws):
    def machine(output):
        return {
            "QueryLanguage": "JSONata",
            "StartAt": "P",
            "States": {"P": {"Type": "Pass", "Output": output, "End": True}},
        }

    kept = aws.run(machine({"none": "{% $states.input.none %}", "n": "{% $states.input.n %}"}), {"none": None, "n": 1})
    assert kept["status"] == "SUCCEEDED", kept.get("cause")
    assert json.loads(kept["output"]) == {"none": None, "n": 1}
    missing = aws.sfn.start_sync_execution(
        stateMachineArn=aws.machine(machine("{% $states.input.missing %}"), name="missing"), input="{}"
    )
    assert (missing["status"], missing["error"]) == ("FAILED", "States.QueryEvaluationError")
    assert "returned nothing (undefined)" in missing["cause"]


def test_a_variable_holding_null_is_null_not_undefined(aws):
    """JSONata's null is a value: $exists is true and `= null` holds (a variable bound as
    Python's None is undefined to jsonata-python)."""
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Remember",
        "States": {
            "Remember": {"Type": "Pass", "Assign": {"parent": "{% $states.input.parent %}"}, "Next": "Root?"},
            "Root?": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $parent = null %}", "Next": "Root"}],
                "Default": "Child",
            },
            "Root": {"Type": "Pass", "Output": {"root": True, "known": "{% $exists($parent) %}"}, "End": True},
            "Child": {"Type": "Pass", "Output": {"root": False, "known": "{% $exists($parent) %}"}, "End": True},
        },
    }
    arn = aws.machine(definition)
    outputs = [
        json.loads(aws.sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps({"parent": parent}))["output"])
        for parent in (None, "p1")
    ]
    assert outputs == [{"root": True, "known": True}, {"root": False, "known": True}]


def test_jsonata_numbers_are_javascripts_and_strings_keep_their_characters(aws):
    """A whole JSON number prints as JavaScript prints it (3.0 is 3); a character outside the
    BMP is one character, bound as data or declared as moto declares $states beside its
    own functions ($partition below)."""
    output = {
        "text": "{% $string($states.input.v) %}",
        "length": "{% $length($states.input.s) %}",
        "declared": "{% $length($states.input.s) & '/' & $string($count($partition([1], 1))) %}",
    }
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Output": output, "End": True}},
    }
    answer = aws.run(definition, {"v": {"n": 3.0, "f": 2.5, "big": 1e21}, "s": '\U0001f600\u2028"\\'})
    assert answer["status"] == "SUCCEEDED", answer.get("cause")
    assert json.loads(answer["output"]) == {"text": '{"n":3,"f":2.5,"big":1e+21}', "length": 4, "declared": "4/1"}


def test_jsonata_sees_the_context_and_step_functions_own_functions(aws):
    output = {
        "name": "{% $states.context.Execution.Name %}",
        "started": "{% $type($states.context.Execution.StartTime) %}",
        "pairs": "{% $partition($states.input.items, 2) %}",
        "counted": "{% $count($states.input.items) %}",
    }
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Output": output, "End": True}},
    }
    answer = aws.run(definition, {"items": [1, 2, 3, 4]}, name="ctx-1")
    assert answer["status"] == "SUCCEEDED", answer.get("cause")
    assert json.loads(answer["output"]) == {
        "name": "ctx-1",
        "started": "string",
        "pairs": [[1, 2], [3, 4]],
        "counted": 4,
    }


# --- what moto would otherwise redo at every execution --------------------------------------------


def test_a_definition_is_parsed_once_and_its_program_serves_concurrent_executions(aws):
    aws.dispatcher.register("double", lambda event, context: {"n": event["n"] * 2})
    definition = {
        "StartAt": "Shape",
        "States": {
            "Shape": {"Type": "Pass", "Parameters": {"n.$": "$.n", "tag.$": "$$.Execution.Name"}, "Next": "Double"},
            "Double": {"Type": "Task", "Resource": lambda_arn("double"), "ResultPath": "$.doubled", "Next": "Out"},
            "Out": {
                "Type": "Pass",
                "QueryLanguage": "JSONata",
                "Output": "{% {'n': $states.input.doubled.n, 'tag': $states.input.tag} %}",
                "End": True,
            },
        },
    }
    arn = aws.machine(definition)
    parsed = aws.adapter.programs.parsed

    def run(n: int) -> dict[str, Any]:
        answer = aws.sfn.start_sync_execution(stateMachineArn=arn, name=f"run-{n}", input=json.dumps({"n": n}))
        assert answer["status"] == "SUCCEEDED", answer.get("cause")
        return json.loads(answer["output"])

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        outputs = list(pool.map(run, range(40)))
    assert outputs == [{"n": 2 * n, "tag": f"run-{n}"} for n in range(40)]
    assert aws.adapter.programs.parsed == parsed, "the executions parsed the definition again"


def test_a_definition_being_parsed_is_waited_for_not_parsed_again():
    import time

    from local.stepfunctions.overhead import ProgramCache

    calls: list[str] = []

    def slow_parse(definition: str):
        calls.append(definition)
        time.sleep(0.3)
        return object(), None

    cache = ProgramCache(slow_parse)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        programs = list(pool.map(cache.parse, ["{}"] * 4))
    assert calls == ["{}"] and cache.parsed == 1
    assert all(program is programs[0] for program in programs)


def test_state_machines_validated_in_the_background(aws):
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    validate = StepFunctionsParserBackend.__dict__["_validate_definition"]
    failures: list[tuple[str, Exception]] = []
    parsed = aws.adapter.programs.parsed
    with aws.adapter.validating_in_background(failed=lambda definition, error: failures.append((definition, error))):
        arn = aws.machine(PASS)  # answers before the parse ends; the first execution waits for it
        broken = {"StartAt": "A", "States": {"A": {"Type": "NoSuchType", "End": True}}}
        aws.machine(broken, name="broken")  # accepted now, reported by the background parse
        with pytest.raises(ClientError, match="ASLParserException"):  # not JSON: refused at once, as moto does
            aws.sfn.create_state_machine(name="nojson", definition="{nope", roleArn=aws.role)
    assert StepFunctionsParserBackend.__dict__["_validate_definition"] is validate
    assert json.loads(aws.sfn.start_sync_execution(stateMachineArn=arn, input="{}")["output"]) == {"answer": 42}
    import time

    deadline = time.monotonic() + 30
    while not failures and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [json.loads(definition) for definition, _ in failures] == [broken]
    assert aws.adapter.programs.parsed == parsed + 1  # PASS, once


def test_lambda_tasks_share_one_client(aws):
    aws.dispatcher.register("echo", lambda event, context: event)
    arn = aws.machine(
        {"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": lambda_arn("echo"), "End": True}}}
    )
    aws.sfn.start_sync_execution(stateMachineArn=arn, input="{}")  # the first task makes the client
    made: list[str] = []
    boto3.DEFAULT_SESSION.events.register("creating-client-class.lambda", lambda **kwargs: made.append("lambda"))
    for _ in range(5):
        assert aws.sfn.start_sync_execution(stateMachineArn=arn, input='{"x": 1}')["output"] == '{"x":1}'
    assert made == []


def test_sync_executions_leave_nothing_behind_in_moto(aws):
    from moto.stepfunctions.models import StateMachine

    arn = aws.machine(PASS)
    aws.sfn.start_sync_execution(stateMachineArn=arn, input="{}")
    tracked = len(StateMachine.instances_tracked)
    for _ in range(20):
        aws.sfn.start_sync_execution(stateMachineArn=arn, input="{}")
    assert len(StateMachine.instances_tracked) == tracked
    assert aws.sfn.list_executions(stateMachineArn=arn)["executions"] == []
    assert len(aws.adapter.sync_executions) == 21  # the adapter's own record, bounded by ``keep``


def test_a_standard_machine_keeps_its_last_finished_executions_and_every_running_one(aws):
    import time

    tokens: dict[str, str] = {}  # execution name -> its task token (executions run in threads: any order)
    aws.dispatcher.register("ask", lambda event, context: tokens.update({event["name"]: event["token"]}) or {})
    waiting = {
        "StartAt": "Ask",
        "States": {
            "Ask": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {
                    "FunctionName": lambda_arn("ask"),
                    "Payload": {"token.$": "$$.Task.Token", "name.$": "$$.Execution.Name"},
                },
                "End": True,
            }
        },
    }
    arn = aws.machine(waiting, kind="STANDARD")
    aws.adapter.keep_finished = 2
    running = aws.sfn.start_execution(stateMachineArn=arn, name="still-running")["executionArn"]
    finished = []
    for n in range(4):
        started = aws.sfn.start_execution(stateMachineArn=arn, name=f"done-{n}")["executionArn"]
        deadline = time.monotonic() + 30
        while f"done-{n}" not in tokens and time.monotonic() < deadline:
            time.sleep(0.02)
        aws.sfn.send_task_success(taskToken=tokens[f"done-{n}"], output="{}")
        assert wait_for_execution(aws.sfn, started)["status"] == "SUCCEEDED"
        finished.append(started)
    aws.sfn.start_execution(stateMachineArn=arn, name="one-more")  # trimming happens at a start
    listed = {e["executionArn"]: e["status"] for e in aws.sfn.list_executions(stateMachineArn=arn)["executions"]}
    assert listed[running] == "RUNNING"
    assert [arn for arn in finished if arn in listed] == finished[-2:]
    deadline = time.monotonic() + 30
    while "still-running" not in tokens and time.monotonic() < deadline:
        time.sleep(0.02)
    aws.sfn.send_task_success(taskToken=tokens["still-running"], output="{}")  # the oldest, still there to be decided
    assert wait_for_execution(aws.sfn, running)["status"] == "SUCCEEDED"


def test_finished_interpreter_threads_are_not_kept(aws):
    from moto.stepfunctions.parser.utils import TMP_THREADS

    arn = aws.machine(PASS)
    before = len(TMP_THREADS)
    for _ in range(200):  # each execution starts a thread or more; moto keeps them all
        aws.sfn.start_sync_execution(stateMachineArn=arn, input="{}")
    assert len(TMP_THREADS) - before < 100


# --- aws-sdk:bedrockruntime:converse ------------------------------------------------------------

CALCULATOR = {
    "ToolSpec": {
        "Name": "calculator",
        "Description": "arithmetic",
        "InputSchema": {"Json": {"type": "object", "properties": {"expression": {"type": "string"}}}},
    }
}


def converse_task(messages, **extra):
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:bedrockruntime:converse",
        "Parameters": {
            "ModelId": "local.stand-in",
            "System": [{"Text": "You are terse."}],
            "Messages": messages,
            "ToolConfig": {"Tools": [CALCULATOR]},
            "InferenceConfig": {"MaxTokens": 256, "Temperature": 0},
        },
        **extra,
    }


@pytest.fixture
def model():
    server = ScriptedModelServer().start()
    yield server
    server.stop()


def test_converse_reaches_the_model_and_answers_in_pascal_case(aws, model):
    aws.adapter.converse_endpoint = model.url
    ask = [{"Role": "user", "Content": [{"Text": "calculate 6*7"}]}]
    answer = aws.run({"StartAt": "Think", "States": {"Think": converse_task(ask, End=True)}})
    assert answer["status"] == "SUCCEEDED", answer.get("cause")
    out = json.loads(answer["output"])
    assert out["StopReason"] == "tool_use"
    assert out["Output"]["Message"]["Role"] == "assistant"
    (block,) = out["Output"]["Message"]["Content"]
    assert block["ToolUse"] == {"ToolUseId": "tooluse_0_0", "Name": "calculator", "Input": {"expression": "6*7"}}
    assert set(out["Usage"]) == {"InputTokens", "OutputTokens", "TotalTokens"}


def test_converse_from_a_jsonata_state(aws, model):
    aws.adapter.converse_endpoint = model.url
    think = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:bedrockruntime:converse",
        "Arguments": {
            "ModelId": "local.stand-in",
            "Messages": "{% [{'Role': 'user', 'Content': [{'Text': $states.input.prompt}]}] %}",
        },
        "Output": {
            "text": "{% $states.result.Output.Message.Content[0].Text %}",
            "stop": "{% $states.result.StopReason %}",
        },
        "End": True,
    }
    answer = aws.run({"QueryLanguage": "JSONata", "StartAt": "Think", "States": {"Think": think}}, {"prompt": "hello"})
    assert answer["status"] == "SUCCEEDED", answer.get("cause")
    assert json.loads(answer["output"]) == {"text": "(local stand-in model) You said: hello", "stop": "end_turn"}


def test_converse_errors_carry_the_sdk_error_name(aws, model):
    aws.adapter.converse_endpoint = model.url
    conversation = [
        {"Role": "user", "Content": [{"Text": "calculate 2+3 then simulate an outage"}]},
        {"Role": "assistant", "Content": [{"ToolUse": {"ToolUseId": "t1", "Name": "calculator", "Input": {}}}]},
        {"Role": "user", "Content": [{"ToolResult": {"ToolUseId": "t1", "Content": [{"Json": {"result": 5}}]}}]},
    ]
    catch = [{"ErrorEquals": ["BedrockRuntime.ServiceUnavailableException"], "ResultPath": "$.error", "Next": "Down"}]
    definition = {
        "StartAt": "Think",
        "States": {"Think": converse_task(conversation, Catch=catch, End=True), "Down": {"Type": "Pass", "End": True}},
    }
    answer = aws.run(definition)
    assert answer["status"] == "SUCCEEDED", answer.get("cause")
    error = json.loads(answer["output"])["error"]
    assert error["Error"] == "BedrockRuntime.ServiceUnavailableException"
    assert "simulated outage" in error["Cause"] and "Status Code: 503" in error["Cause"]


class Loopback:
    """A loopback HTTP server answering each path from ``routes``; records every request."""

    def __init__(self, routes: dict[str, tuple[int, dict[str, str], bytes]]) -> None:
        self.requests: list[dict[str, Any]] = []
        loopback = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length) if length else b""
                loopback.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                )
                status, headers, payload = routes[self.path.split("?")[0]]
                self.send_response(status)
                for key, value in {"content-length": str(len(payload)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_converse_throttling_is_bedrockruntime_throttlingexception(aws):
    throttled = json.dumps({"message": "Too many requests, please wait before trying again."}).encode()
    bedrock = Loopback(
        {
            "/model/local.stand-in/converse": (
                429,
                {"x-amzn-ErrorType": "ThrottlingException:http://internal"},
                throttled,
            )
        }
    )
    try:
        aws.adapter.converse_endpoint = bedrock.url
        ask = [{"Role": "user", "Content": [{"Text": "hi"}]}]
        answer = aws.run({"StartAt": "Think", "States": {"Think": converse_task(ask, End=True)}})
    finally:
        bedrock.stop()
    assert (answer["status"], answer["error"]) == ("FAILED", "BedrockRuntime.ThrottlingException")
    assert answer["cause"].startswith("Too many requests, please wait before trying again. (Service: BedrockRuntime")
    (request,) = bedrock.requests
    sent = json.loads(request["body"])
    assert sent["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]
    assert sent["inferenceConfig"] == {"maxTokens": 256, "temperature": 0}
    assert (
        sent["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]
        == CALCULATOR["ToolSpec"]["InputSchema"]["Json"]
    )


# --- aws-sdk:* parameters: PascalCase, as Step Functions takes them --------------------------------


def put_item(parameters: dict[str, Any]) -> dict[str, Any]:
    task = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:putItem", "Parameters": parameters}
    return {"StartAt": "Put", "States": {"Put": {**task, "End": True}}}


@pytest.fixture
def table(aws):
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName="things",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


def test_sdk_parameters_in_pascal_case_reach_the_service(aws, table):
    answer = aws.run(put_item({"TableName": "things", "Item": {"pk": {"S": "k1"}, "n": {"N": "7"}}}))
    assert answer["status"] == "SUCCEEDED", answer.get("cause")
    item = table.get_item(TableName="things", Key={"pk": {"S": "k1"}})["Item"]
    assert item == {"pk": {"S": "k1"}, "n": {"N": "7"}}, "an attribute name is data: kept as written"


@pytest.mark.parametrize(
    ("parameters", "written", "pascal"),
    [
        ({"tableName": "things", "Item": {"pk": {"S": "k1"}}}, "tableName", "TableName"),
        ({"TableName": "things", "Item": {"pk": {"s": "k1"}}}, "Item.pk.s", "S"),
    ],
)
def test_sdk_parameters_in_another_case_are_refused_naming_the_key(aws, table, parameters, written, pascal):
    answer = aws.run(put_item(parameters))
    assert (answer["status"], answer["error"]) == ("FAILED", "States.Runtime")
    assert f"aws-sdk:dynamodb:putItem: the parameter '{written}' must be written '{pascal}'" in answer["cause"]
    assert "Item" not in table.get_item(TableName="things", Key={"pk": {"S": "k1"}}), "nothing was written"


def test_an_unknown_sdk_parameter_is_refused_naming_what_the_api_takes(aws, table):
    answer = aws.run(put_item({"TableName": "things", "Item": {"pk": {"S": "k1"}}, "Consistent": True}))
    assert (answer["status"], answer["error"]) == ("FAILED", "States.Runtime")
    assert "'Consistent' is not a parameter of the API" in answer["cause"] and "TableName" in answer["cause"]


def test_a_converse_request_in_camel_case_never_reaches_the_model(aws, model):
    aws.adapter.converse_endpoint = model.url
    think = converse_task([{"Role": "user", "Content": [{"Text": "hi"}]}], End=True)
    think["Parameters"]["modelId"] = think["Parameters"].pop("ModelId")
    answer = aws.run({"StartAt": "Think", "States": {"Think": think}})
    assert (answer["status"], answer["error"]) == ("FAILED", "States.Runtime")
    assert "the parameter 'modelId' must be written 'ModelId'" in answer["cause"]
    assert not model.requests


# --- http:invoke ----------------------------------------------------------------------------------


@pytest.fixture
def api():
    ok = json.dumps({"ok": True}).encode()
    server = Loopback(
        {
            "/v1/things": (201, {"content-type": "application/json"}, ok),
            "/v1/text": (200, {"content-type": "text/plain"}, b"plain words"),
            "/v1/busy": (429, {"content-type": "application/json", "retry-after": "1"}, b'{"message": "slow down"}'),
            "/v1/broken": (500, {"content-type": "text/plain"}, b"oops"),
        }
    )
    yield server
    server.stop()


def connection(name="partner", auth_type="API_KEY", **auth):
    auth = auth or {"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": SECRET}}
    events = boto3.client("events", region_name=REGION)
    return events.create_connection(Name=name, AuthorizationType=auth_type, AuthParameters=auth)["ConnectionArn"]


def http_task(endpoint, connection_arn, method="POST", **parameters):
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::http:invoke",
        "Parameters": {
            "ApiEndpoint": endpoint,
            "Method": method,
            "Authentication": {"ConnectionArn": connection_arn},
            **parameters,
        },
        "End": True,
    }


def test_http_task_calls_the_endpoint_with_the_connections_key(aws, api, caplog):
    arn = connection()
    caplog.set_level(logging.DEBUG)
    task = http_task(
        f"{api.url}/v1/things",
        arn,
        Headers={"X-Trace": "t-1"},
        QueryParameters={"limit": 2, "tag": ["a", "b"]},
        RequestBody={"name": "widget", "size": 3},
    )
    answer = aws.run({"StartAt": "Call", "States": {"Call": task}})
    assert answer["status"] == "SUCCEEDED", answer.get("cause")
    out = json.loads(answer["output"])
    assert (out["StatusCode"], out["StatusText"], out["ResponseBody"]) == (201, "Created", {"ok": True})
    assert out["Headers"]["content-type"] == ["application/json"]

    (request,) = api.requests
    assert request["method"] == "POST"
    assert request["path"] == "/v1/things?limit=2&tag=a&tag=b"
    assert request["headers"]["x-api-key"] == SECRET and request["headers"]["x-trace"] == "t-1"
    assert request["headers"]["content-type"] == "application/json; charset=UTF-8"
    assert json.loads(request["body"]) == {"name": "widget", "size": 3}

    history = json.dumps(aws.adapter.sync_executions[-1].to_history_output(), default=str)
    assert "TaskSucceeded" in history
    for where in (json.dumps(answer, default=str), history, caplog.text):
        assert SECRET not in where


def test_http_task_text_bodies_stay_text_and_form_encoding(aws, api):
    arn = connection()
    task = http_task(
        f"{api.url}/v1/text",
        arn,
        RequestBody={"ids": [1, 2], "q": "a b"},
        Transform={"RequestBodyEncoding": "URL_ENCODED", "RequestEncodingOptions": {"ArrayFormat": "BRACKETS"}},
    )
    answer = aws.run({"StartAt": "Call", "States": {"Call": task}})
    assert json.loads(answer["output"])["ResponseBody"] == "plain words"
    (request,) = api.requests
    assert request["body"] == b"ids%5B%5D=1&ids%5B%5D=2&q=a+b"
    assert request["headers"]["content-type"] == "application/x-www-form-urlencoded"


def test_http_task_basic_auth_connection(aws, api):
    arn = connection("basic", "BASIC", BasicAuthParameters={"Username": "u", "Password": "p"})
    answer = aws.run({"StartAt": "Call", "States": {"Call": http_task(f"{api.url}/v1/things", arn, method="GET")}})
    assert answer["status"] == "SUCCEEDED"
    assert api.requests[0]["headers"]["authorization"] == "Basic dTpw"


def test_http_task_non_2xx_is_states_http_statuscode(aws, api):
    arn = connection()
    busy = http_task(f"{api.url}/v1/busy", arn, method="GET")
    busy.pop("End")
    busy.update(
        Catch=[{"ErrorEquals": ["States.Http.StatusCode.429"], "ResultPath": "$.failure", "Next": "Later"}], Next="Done"
    )
    definition = {
        "StartAt": "Call",
        "States": {"Call": busy, "Later": {"Type": "Pass", "End": True}, "Done": {"Type": "Succeed"}},
    }
    answer = aws.run(definition)
    failure = json.loads(answer["output"])["failure"]
    assert failure["Error"] == "States.Http.StatusCode.429"
    cause = json.loads(failure["Cause"])
    assert (cause["StatusCode"], cause["ResponseBody"]) == (429, {"message": "slow down"})

    uncaught = aws.sfn.start_sync_execution(
        stateMachineArn=aws.machine(
            {"StartAt": "Call", "States": {"Call": http_task(f"{api.url}/v1/broken", arn)}}, name="b"
        )
    )
    assert (uncaught["status"], uncaught["error"]) == ("FAILED", "States.Http.StatusCode.500")
    assert SECRET not in json.dumps(uncaught, default=str)


def test_http_task_without_an_answer_is_states_http_socket(aws):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    answer = aws.run({"StartAt": "Call", "States": {"Call": http_task(f"http://127.0.0.1:{port}/x", connection())}})
    assert (answer["status"], answer["error"]) == ("FAILED", "States.Http.Socket")


def test_http_task_unknown_connection(aws, api):
    missing = f"arn:aws:events:{REGION}:{ACCOUNT}:connection/nobody/0000"
    answer = aws.run({"StartAt": "Call", "States": {"Call": http_task(f"{api.url}/v1/things", missing)}})
    assert (answer["status"], answer["error"]) == ("FAILED", "Events.ConnectionResource.ResourceNotFound")
    assert api.requests == []


# --- the payload quota: 256 KiB a state, States.DataLimitExceeded, terminal --------------------------

LIMIT = 256 * 1024
CATCH_ALL = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}]
CAUGHT = {"Caught": {"Type": "Pass", "End": True}}


def text_of(size: int, character: str = "x") -> str:
    """A string whose JSON, quotes included, is ``size`` bytes of UTF-8."""
    width = len(character.encode())
    assert (size - 2) % width == 0
    return character * ((size - 2) // width)


def entered(aws: Aws) -> list[str]:
    events = aws.adapter.sync_executions[-1].to_history_output()["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def returning(aws: Aws, value: Any) -> dict[str, Any]:
    """A Lambda task whose function answers ``value``."""
    aws.dispatcher.register("work", lambda event, context: value)
    return {"Type": "Task", "Resource": lambda_arn("work")}


@pytest.mark.parametrize(("size", "character"), [(LIMIT, "x"), (LIMIT - 2, "日"), (LIMIT + 1, "x"), (LIMIT + 2, "é")])
def test_the_quota_is_256_kib_of_utf8_json(aws, size, character):
    # 日 is 3 bytes of UTF-8 (moto counted its 6-byte \u65e5 escape, and a space after each separator).
    answer = aws.run({"StartAt": "Work", "States": {"Work": {**returning(aws, text_of(size, character)), "End": True}}})
    if size <= LIMIT:
        assert answer["status"] == "SUCCEEDED", answer.get("cause")
        assert json.loads(answer["output"]) == text_of(size, character)
    else:
        assert (answer["status"], answer["error"]) == ("FAILED", "States.DataLimitExceeded")
        assert f"{size:,} bytes as UTF-8 JSON, over the 262,144-byte (256 KiB) payload size quota" in answer["cause"]


@pytest.mark.parametrize("over", ["the task's result", "the state's output"])
def test_a_state_output_over_256_kib_is_data_limit_exceeded_and_states_all_does_not_catch_it(aws, over):
    if over == "the task's result":
        task, execution_input = returning(aws, {"big": "x" * LIMIT}), {}
    else:  # a small result put beside a large input
        task = {**returning(aws, {"note": "y" * 300}), "ResultPath": "$.result"}
        execution_input = {"big": "x" * (LIMIT - 200)}
    definition = {"StartAt": "Work", "States": {"Work": {**task, "Catch": CATCH_ALL, "End": True}, **CAUGHT}}
    answer = aws.run(definition, execution_input)
    assert (answer["status"], answer["error"]) == ("FAILED", "States.DataLimitExceeded")
    assert answer["cause"].startswith("The state/task 'Work' returned a result that is ")
    assert entered(aws) == ["Work"], "the States.ALL catcher never ran"


def test_a_retrier_for_states_all_does_not_retry_it(aws):
    retry = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 3}]
    work = {**returning(aws, "x" * LIMIT), "Retry": retry, "End": True}
    answer = aws.run({"StartAt": "Work", "States": {"Work": work}})
    assert (answer["status"], answer["error"]) == ("FAILED", "States.DataLimitExceeded")
    assert len(aws.dispatcher.calls_to("work")) == 1


def test_a_task_input_over_256_kib_after_parameters_is_refused_before_the_call(aws):
    half = "x" * (LIMIT // 2)
    work = {**returning(aws, "done"), "Parameters": {"a.$": "$.half", "b.$": "$.half"}, "Catch": CATCH_ALL}
    answer = aws.run({"StartAt": "Work", "States": {"Work": {**work, "End": True}, **CAUGHT}}, {"half": half})
    assert (answer["status"], answer["error"]) == ("FAILED", "States.DataLimitExceeded")
    assert "'Work' input after Parameters/Arguments is " in answer["cause"]
    assert aws.dispatcher.calls_to("work") == [], "the function was never invoked"


@pytest.mark.parametrize("over", ["an iteration's input", "an iteration's result"])
def test_a_map_iteration_over_256_kib_fails_the_map_and_its_states_all_catcher_does_not_catch_it(aws, over):
    half = "x" * (LIMIT // 2)
    if over == "an iteration's input":  # the item after ItemSelector, on entering the iteration's first state
        selector, result = {"a.$": "$.half", "b.$": "$.half"}, "small"
    else:
        selector, result = {"n.$": "$$.Map.Item.Value"}, "x" * LIMIT
    iteration = {"StartAt": "Item", "States": {"Item": {**returning(aws, result), "End": True}}}
    each = {
        "Type": "Map",
        "ItemsPath": "$.items",
        "ItemSelector": selector,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, **iteration},
        "Catch": CATCH_ALL,
        "End": True,
    }
    answer = aws.run({"StartAt": "Each", "States": {"Each": each, **CAUGHT}}, {"items": [1], "half": half})
    assert (answer["status"], answer["error"]) == ("FAILED", "States.DataLimitExceeded")
    assert "'Item'" in answer["cause"]
    assert "Caught" not in entered(aws)


def test_a_parallel_branch_over_256_kib_fails_the_parallel_state_uncaught(aws):
    branch = {"StartAt": "Grow", "States": {"Grow": {**returning(aws, "x" * LIMIT), "End": True}}}
    both = {"Type": "Parallel", "Branches": [branch], "Catch": CATCH_ALL, "End": True}
    answer = aws.run({"StartAt": "Both", "States": {"Both": both, **CAUGHT}})
    assert (answer["status"], answer["error"]) == ("FAILED", "States.DataLimitExceeded")
    assert "'Grow'" in answer["cause"] and "Caught" not in entered(aws)


# -- ecs:runTask.sync: the task's container as a local process ----------------------------------

# A stand-in for the container's entrypoint (tests only; the local stack runs python -m
# handlers.longrun): writes what it got, then does what MODE says.
STAND_IN = """
import json, os, pathlib, signal, sys, time
out = pathlib.Path(os.environ["OUT"])
out.joinpath("event.json").write_text(json.dumps({"event": json.loads(os.environ["TOOL_EVENT"]),
    "static": os.environ.get("STATIC"), "leaked": os.environ.get("LEAK_CHECK")}))
mode = os.environ["MODE"]
if mode == "stubborn":
    signal.signal(signal.SIGTERM, lambda *_: out.joinpath("ignored").write_text("x"))
else:
    def checkpoint(*_):
        out.joinpath("checkpoint").write_text("saved")
        sys.exit(143)
    signal.signal(signal.SIGTERM, checkpoint)
out.joinpath("started").write_text("x")
if mode == "fail":
    sys.exit(3)
if mode in ("long", "stubborn"):
    while True:
        time.sleep(0.01)
"""
TASK_DEF = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/agent-infra-test-digest:1"
CLUSTER = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/agent-infra-test"


def run_task_machine(provider: str = "FARGATE_SPOT", extra: dict | None = None) -> dict[str, Any]:
    """One runTask.sync state, its failure caught whole (to read what Step Functions gave)."""
    return {
        "StartAt": "Run",
        "States": {
            "Run": {
                "Type": "Task",
                "Resource": "arn:aws:states:::ecs:runTask.sync",
                "Parameters": {
                    "Cluster": CLUSTER,
                    "TaskDefinition": TASK_DEF,
                    "CapacityProviderStrategy": [{"CapacityProvider": provider, "Weight": 1}],
                    "Overrides": {
                        "ContainerOverrides": [
                            {
                                "Name": "tool",
                                "Environment": [{"Name": "TOOL_EVENT", "Value.$": "States.JsonToString($)"}],
                            }
                        ]
                    },
                    **(extra or {}),
                },
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }


@pytest.fixture
def ecs(aws, tmp_path, monkeypatch):
    from local.ecs.tasks import LocalTaskDefinition

    monkeypatch.setenv("LEAK_CHECK", "the parent's environment")
    script = tmp_path / "entrypoint.py"
    script.write_text(STAND_IN)

    def register(mode: str, stop_timeout: float = 5.0) -> None:
        aws.adapter.ecs.register(
            LocalTaskDefinition(
                TASK_DEF,
                "tool",
                {"OUT": str(tmp_path), "MODE": mode, "STATIC": "from the task definition"},
                command=(sys.executable, str(script)),
                stop_timeout_seconds=stop_timeout,
            )
        )

    aws.register, aws.out = register, tmp_path
    return aws


def test_a_task_that_exits_0_succeeds_with_the_stopped_tasks_description(ecs):
    ecs.register("ok")
    answer = ecs.run(run_task_machine(), {"seq": 100, "name": "digest"})
    assert answer["status"] == "SUCCEEDED", answer
    task = json.loads(answer["output"])
    assert task["LastStatus"] == "STOPPED" and task["StopCode"] == "EssentialContainerExited"
    assert task["Containers"][0]["ExitCode"] == 0 and task["CapacityProviderName"] == "FARGATE_SPOT"
    assert task["StartedBy"] == "AWS Step Functions" and task["TaskDefinitionArn"] == TASK_DEF
    seen = json.loads((ecs.out / "event.json").read_text())
    assert seen == {"event": {"seq": 100, "name": "digest"}, "static": "from the task definition", "leaked": None}


def test_a_non_zero_exit_fails_the_state_with_the_task_as_the_cause(ecs):
    ecs.register("fail")
    answer = ecs.run(run_task_machine(), {})
    caught = json.loads(answer["output"])
    assert caught["Error"] == "States.TaskFailed"
    task = json.loads(caught["Cause"])
    assert task["StopCode"] == "EssentialContainerExited" and task["Containers"][0]["ExitCode"] == 3
    assert '"StopCode":"EssentialContainerExited"' in caught["Cause"], "compact JSON, as Step Functions writes it"


def test_a_spot_interruption_sends_sigterm_and_stops_with_its_stop_code(ecs):
    ecs.register("long")
    ecs.adapter.ecs.interrupt_next(when=lambda: (ecs.out / "started").exists())
    caught = json.loads(ecs.run(run_task_machine(), {})["output"])
    task = json.loads(caught["Cause"])
    assert caught["Error"] == "States.TaskFailed"
    assert (task["StopCode"], task["StoppedReason"]) == ("SpotInterruption", "Your Spot Task was interrupted.")
    assert task["Containers"][0]["ExitCode"] == 143 and (ecs.out / "checkpoint").read_text() == "saved"


def test_a_container_that_ignores_sigterm_is_killed_after_the_stop_timeout(ecs):
    ecs.register("stubborn", stop_timeout=0.2)
    ecs.adapter.ecs.interrupt_next(when=lambda: (ecs.out / "started").exists())
    task = json.loads(json.loads(ecs.run(run_task_machine(), {})["output"])["Cause"])
    assert task["StopCode"] == "SpotInterruption" and task["Containers"][0]["ExitCode"] == 137
    assert (ecs.out / "ignored").exists()


def test_only_a_spot_task_is_interrupted(ecs):
    ecs.register("ok")
    ecs.adapter.ecs.interrupt_next()
    answer = ecs.run(run_task_machine("FARGATE"), {})
    assert answer["status"] == "SUCCEEDED" and json.loads(answer["output"])["CapacityProviderName"] == "FARGATE"
    assert len(ecs.adapter.ecs._planned) == 1, "the interruption waits for a Spot task"


def test_a_container_that_cannot_start_stops_with_task_failed_to_start(ecs, tmp_path):
    from local.ecs.tasks import LocalTaskDefinition

    ecs.adapter.ecs.register(LocalTaskDefinition(TASK_DEF, "tool", {}, command=(str(tmp_path / "missing"),)))
    caught = json.loads(ecs.run(run_task_machine(), {})["output"])
    task = json.loads(caught["Cause"])
    assert caught["Error"] == "States.TaskFailed" and task["StopCode"] == "TaskFailedToStart"
    assert task["StoppedReason"].startswith("CannotStartContainerError") and "ExitCode" not in task["Containers"][0]


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"LaunchType": "FARGATE"}, "launchType parameter must be omitted"),
        ({"TaskDefinition": "arn:aws:ecs:us-east-1:1:task-definition/nope:1"}, "Unable to find task definition"),
        (
            {"Overrides": {"ContainerOverrides": [{"Name": "other", "Environment": []}]}},
            "Override for container named other is not a container",
        ),
    ],
)
def test_run_task_refuses_what_ecs_refuses(ecs, extra, problem):
    ecs.register("ok")
    caught = json.loads(ecs.run(run_task_machine(extra=extra), {})["output"])
    assert caught["Error"] == "ECS.AmazonECSException" and problem in caught["Cause"]


def test_a_state_that_times_out_stops_its_task(ecs):
    ecs.register("long")
    machine = run_task_machine()
    machine["States"]["Run"]["TimeoutSeconds"] = 1
    caught = json.loads(ecs.run(machine, {})["output"])
    assert caught["Error"] == "States.Timeout"
    deadline = time.monotonic() + 10
    while not ecs.adapter.ecs.stopped and time.monotonic() < deadline:
        time.sleep(0.05)
    (task,) = ecs.adapter.ecs.stopped
    assert task["StopCode"] == "UserInitiated" and task["Containers"][0]["ExitCode"] == 143
