"""The REST API's document and its behaviour in step: schemathesis generates requests from the
OpenAPI document API Gateway deploys and checks every answer of the local stack against it.

Bounded (a fixed number of derandomized examples per operation and mode) so it runs in every
`make test`.
"""

from __future__ import annotations

import pytest
import schemathesis
import schemathesis.specs.openapi.schemas  # imported before any thread: see below
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from local.stack import LocalStack

# schemathesis imports its OpenAPI loader at the first from_dict; it is imported above instead,
# before the local stack's threads run: Python 3.11's ast.parse (pytest rewrites a plugin's
# modules as it imports them) can fail when another thread compiles at the same moment,
# https://github.com/python/cpython/issues/106905 ("AST constructor recursion depth mismatch").

EXAMPLES = 10
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
    yield running
    running.stop()


# A request the document forbids may be refused as API Gateway refuses it: 400 (validation),
# 401/403 (auth, unknown route), 404 (not the caller's), 413 (request line and headers over
# its 10,240-byte quota), 415 (not JSON), 422.
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": [400, 401, 403, 404, 413, 415, 422]}}}
)


def operations(document) -> list:
    schema = schemathesis.openapi.from_dict(document, config=CONFIG)
    return [result.ok() for result in schema.get_all_operations()]


def test_the_generator_sees_every_operation(api):
    assert len(operations(api.openapi)) == sum(len(item) for item in api.openapi["paths"].values())


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_every_answer_is_one_the_document_promises(api, mode):
    headers = {"Authorization": f"Bearer {api.dev_token}", "x-api-key": api.api_key}
    failures = []
    for operation in operations(api.openapi):

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            case.call_and_validate(base_url=api.rest.url, headers=headers, checks=CHECKS)

        try:
            check()
        except Unsatisfiable:
            # Nothing of this operation can be made invalid (health takes no input).
            assert mode is GenerationMode.NEGATIVE and not operation.definition.raw.get("parameters"), operation.path
        except Exception as error:  # collect every operation's failure, then fail once
            failures.append(f"{operation.method.upper()} {operation.path}: {error}")
    assert not failures, "\n\n".join(failures)
