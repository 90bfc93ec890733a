"""The REST API's document and its behaviour in step: schemathesis generates requests from the
OpenAPI document API Gateway deploys and checks every answer of the local stack against it.

Bounded (a fixed number of derandomized examples per operation and mode) so it runs in every
`make test`.
"""

from __future__ import annotations

import importlib
import sys
import textwrap

import jsonschema
import pytest
import requests
import schemathesis
import schemathesis.specs.openapi.schemas  # imported before any thread: see below
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks
from schemathesis.errors import FailureGroup

from local.stack import LocalStack

# schemathesis imports its OpenAPI loader at the first from_dict; it is imported above instead,
# before the local stack's threads run: Python 3.11's ast.parse (pytest rewrites a plugin's
# modules as it imports them) can fail when another thread compiles at the same moment,
# https://github.com/python/cpython/issues/106905 ("AST constructor recursion depth mismatch").

EXAMPLES = 10
CREDENTIALS = ["authorization", "x-api-key"]
CHECKS = [
    checks.not_a_server_error,  # nothing generated may crash a route (no 5xx)
    checks.status_code_conformance,  # every status answered is one the document lists
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,  # what the document forbids is refused with a 4xx
]


@pytest.fixture(scope="module")
def api():
    running = LocalStack("dev", moto_port=None, log=lambda entry: None, throttle=(10_000, 20_000)).start()
    # The stack's start goes on in two threads that parse the state machine definitions
    # (local/stepfunctions/adapter.py, validating_in_background): moto's parser calls
    # ast.literal_eval for every string, and this thread builds ASTs too (pytest rewriting the
    # hypothesis and schemathesis modules imported on first use, hypothesis reading its
    # filters' lambdas), the race of gh-106905 above. The tests begin once those parses are done.
    for arn in (running.turn_arn, running.task_arn):
        running.adapter.programs.parse(running.sfn.describe_state_machine(stateMachineArn=arn)["definition"])
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def same_requests_every_run(monkeypatch):
    """hypothesis draws some values from the constants in the source of every local module
    loaded in the process (``_get_local_constants`` in hypothesis/internal/conjecture/providers.py).
    Which modules those are depends on what else ran in this process (pytest-xdist gives each
    worker the next free test file) and on what the stack's threads imported by then, so
    ``derandomize`` alone sends different requests from one ``make test`` to the next: a
    failure seen once may not come back. Without them the requests follow from the document
    and this file alone."""
    from hypothesis.internal.conjecture import providers

    monkeypatch.setattr(providers, "_get_local_constants", providers.Constants)
    providers.CONSTANTS_CACHE.cache.clear()  # allowed values computed with another test's pool
    yield
    providers.CONSTANTS_CACHE.cache.clear()


# A request the document forbids may be refused as API Gateway refuses it: 400 (validation),
# 401/403 (auth, unknown route), 404 (not the caller's), 413 (request line and headers over
# its 10,240-byte quota), 415 (not JSON), 422.
# The client waits as long as API Gateway waits for an integration (29 s, the turn's
# timeoutInMillis), not schemathesis' default 10 s: on a loaded machine a slow answer is still
# the API's answer to check.
# A failure shows the request it sent: only the credentials are hidden (schemathesis hides every
# header whose name holds "key", the Idempotency-Key included, by default).
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {"negative_data_rejection": {"expected-statuses": [400, 401, 403, 404, 413, 415, 422]}},
        "request-timeout": 30,
        "output": {"sanitization": {"keys-to-sanitize": CREDENTIALS, "sensitive-markers": CREDENTIALS}},
    }
)


def operations(document) -> list:
    schema = schemathesis.openapi.from_dict(document, config=CONFIG)
    return [result.ok() for result in schema.get_all_operations()]


def test_the_generator_sees_every_operation(api):
    assert len(operations(api.openapi)) == sum(len(item) for item in api.openapi["paths"].values())


def report(error: BaseException) -> str:
    """The error and every error it groups. hypothesis raises a ``FlakyFailure`` when a failing
    case passes on its replay: its own text is only "Inconsistent results"; what failed on the
    first run is one of its ``exceptions``. A schemathesis ``FailureGroup``'s text has it all:
    each check that failed, the response's status and body, the request as curl."""
    lines = [f"{type(error).__name__}: {error}", *getattr(error, "__notes__", ())]
    if not isinstance(error, FailureGroup):
        lines += [textwrap.indent(report(inner), "    ") for inner in getattr(error, "exceptions", ())]
    return "\n".join(lines)


def explore(api, operation, mode: GenerationMode, checks: list) -> str | None:
    """Send the operation's generated cases and check each answer: what failed, or None."""
    headers = {"Authorization": f"Bearer {api.dev_token}", "x-api-key": api.api_key}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        try:
            case.call_and_validate(base_url=api.rest.url, headers=headers, checks=checks)
        except Exception as error:  # not a check's failure (those come as a FailureGroup): name the request
            error.add_note(f"while sending: {case.as_curl_command(base_url=api.rest.url)}")
            raise

    try:
        check()
    except Unsatisfiable:
        # Nothing of this operation can be made invalid (health takes no input).
        assert mode is GenerationMode.NEGATIVE and not operation.definition.raw.get("parameters"), operation.path
    except (Exception, FailureGroup) as error:  # a FailureGroup is a BaseExceptionGroup
        return f"{operation.method.upper()} {operation.path}: {report(error)}"
    return None


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_every_answer_is_one_the_document_promises(api, mode):
    found = [explore(api, operation, mode, CHECKS) for operation in operations(api.openapi)]
    failures = [failure for failure in found if failure]  # every operation's, then fail once
    assert not failures, "\n\n".join(failures)


def test_a_failure_that_passes_on_replay_says_what_failed(api):
    """hypothesis replays a failing case before it reports it; one that passes then (a request
    lost once, say) is raised as a FlakyFailure whose own text ("Inconsistent results", or
    "produces unreliable results") leaves out what failed. The report names the error and the
    request."""
    (health,) = [op for op in operations(api.openapi) if op.path == "/v1/health"]
    seen = []

    def lost_once(ctx, response, case):
        seen.append(response.status_code)
        if len(seen) == 1:
            raise ConnectionResetError("the first answer was lost")

    found = explore(api, health, GenerationMode.POSITIVE, [checks.status_code_conformance, lost_once])
    assert found is not None and found.startswith("GET /v1/health: FlakyFailure"), found
    for shown in ("ConnectionResetError: the first answer was lost", "while sending: curl -X GET", "/v1/health"):
        assert shown in found, (shown, found)


def test_the_requests_do_not_depend_on_what_else_is_loaded(api, tmp_path, monkeypatch):
    """Another module loaded (as another test file in the same worker loads some) leaves the
    generated requests as they were."""
    (turn,) = [op for op in operations(api.openapi) if op.method == "post" and op.path.endswith("/messages")]

    def requests() -> list:
        drawn = []

        @settings(max_examples=EXAMPLES, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
        @given(case=turn.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        def draw(case):
            drawn.append((case.path_parameters, case.headers, case.body))

        draw()
        return drawn

    before = requests()
    # Words and numbers hypothesis would draw (it skips modules of more than 1,024 constants).
    words, numbers = [f"k{n}" for n in range(300)], list(range(1000, 1300))
    (tmp_path / "elsewhere.py").write_text(f"WORDS = {words}\nNUMBERS = {numbers}\n")
    monkeypatch.syspath_prepend(tmp_path)
    monkeypatch.delitem(sys.modules, "elsewhere", raising=False)
    importlib.import_module("elsewhere")
    assert requests() == before


def test_an_empty_idempotency_key_is_no_key(api):
    """The routes take an empty Idempotency-Key for none (the turn runs each time), and the
    document allows it: else every empty key would be a request the document forbids and the
    API accepts."""
    headers = {"Authorization": f"Bearer {api.dev_token}", "x-api-key": api.api_key, "Idempotency-Key": ""}
    url = f"{api.rest.url}/v1/sessions/empty-key/messages"
    answers = [requests.post(url, json={"message": "hi"}, headers=headers, timeout=30) for _ in range(2)]
    assert [answer.status_code for answer in answers] == [200, 200], [answer.text for answer in answers]
    assert answers[0].json()["messageId"] != answers[1].json()["messageId"]
    parameters = api.openapi["paths"]["/v1/sessions/{sessionId}/messages"]["post"]["parameters"]
    (key,) = [parameter for parameter in parameters if parameter["name"] == "Idempotency-Key"]
    jsonschema.validate("", key["schema"])
