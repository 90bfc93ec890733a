"""scripts/smoke.py: its arguments, its checks of a reply, and one real turn against the local
stack (loopback only; never AWS)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from local.stack import LocalStack
from scripts.smoke import Reply, UsageError, check_reply, main, parse_args

SECRET_TOKEN = "eyJhbGciOiJSUzI1NiJ9.secret-payload.signature"
SECRET_KEY = "api-key-do-not-print"


def test_token_and_api_key_come_from_the_environment_and_the_url_is_normalised():
    args = parse_args(["https://api.example.com/"], {"SMOKE_TOKEN": "Bearer abc", "SMOKE_API_KEY": "k"})
    assert (args.url, args.token, args.api_key) == ("https://api.example.com", "abc", "k")
    assert args.session_id.startswith("smoke-") and args.expect == "42"
    flags = parse_args(["https://x.example.com/live", "--token", "t", "--session", "s-1"], {"SMOKE_TOKEN": "env"})
    assert (flags.url, flags.token, flags.api_key, flags.session_id) == ("https://x.example.com/live", "t", None, "s-1")


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["https://api.example.com"], {}, "no JWT"),
        (["http://api.example.com"], {"SMOKE_TOKEN": "t"}, "use https://"),
        (["ftp://api.example.com"], {"SMOKE_TOKEN": "t"}, "use https://"),
        (["https://api.example.com/?a=1"], {"SMOKE_TOKEN": "t"}, "without query"),
        (["https://api.example.com", "--timeout", "0"], {"SMOKE_TOKEN": "t"}, "--timeout"),
    ],
)
def test_bad_arguments_are_refused(argv, environ, message):
    with pytest.raises(UsageError, match=message):
        parse_args(argv, environ)


def test_plain_http_is_allowed_on_loopback_only():
    assert parse_args(["http://127.0.0.1:8080"], {"SMOKE_TOKEN": "t"}).url == "http://127.0.0.1:8080"
    assert main(["http://10.0.0.1:8080"], {"SMOKE_TOKEN": "t"}) == 2


def good_body(session="s-1", answer="6*7 = 42"):
    return json.dumps({"sessionId": session, "messageId": "01M", "answer": answer}).encode()


@pytest.mark.parametrize(
    ("reply", "problems"),
    [
        (Reply(200, {"x-amzn-trace-id": "Root=1-abc"}, good_body()), []),
        (Reply(200, {"x-request-id": "r-1"}, good_body()), []),
        (Reply(200, {}, good_body()), ["no trace header (x-amzn-trace-id or x-request-id)"]),
        (
            Reply(200, {"x-request-id": "r"}, good_body(answer="I cannot")),
            ["the answer does not contain '42': 'I cannot'"],
        ),
        (Reply(200, {"x-request-id": "r"}, good_body(session="s-2")), ["sessionId 's-2', sent 's-1'"]),
        (Reply(200, {"x-request-id": "r"}, b"<html>"), ["the body is not JSON"]),
        (
            Reply(403, {"x-amzn-trace-id": "Root=1"}, b'{"message":"Forbidden"}'),
            ['status 403: {"message":"Forbidden"}'],
        ),
    ],
)
def test_reply_checks(reply, problems):
    assert check_reply(reply, "s-1", "42") == problems


class _Fake(BaseHTTPRequestHandler):
    """A loopback API that answers every turn the same way, and remembers the request."""

    answer: ClassVar[tuple[int, dict[str, str], bytes]] = (200, {}, b"{}")
    seen: ClassVar[list[dict]] = []

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        _Fake.seen.append(
            {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": self.rfile.read(length),
            }
        )
        status, headers, body = _Fake.answer
        self.send_response(status)
        for name, value in {**headers, "content-length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Fake.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_request_carries_token_api_key_and_message_and_nothing_secret_is_printed(fake, capsys):
    _Fake.answer = (200, {"X-Amzn-Trace-Id": "Root=1-67-abc"}, good_body(session="s-9"))
    environ = {"SMOKE_TOKEN": SECRET_TOKEN, "SMOKE_API_KEY": SECRET_KEY}
    assert main([f"{fake}/live/", "--session", "s-9"], environ) == 0
    (request,) = _Fake.seen
    assert request["path"] == "/live/v1/sessions/s-9/messages"
    assert request["headers"]["authorization"] == f"Bearer {SECRET_TOKEN}"
    assert request["headers"]["x-api-key"] == SECRET_KEY
    assert json.loads(request["body"]) == {"message": "calculate 6*7"}
    out = capsys.readouterr()
    assert "OK" in out.out and "Root=1-67-abc" in out.out
    assert SECRET_TOKEN not in out.out + out.err and SECRET_KEY not in out.out + out.err


def test_a_reply_without_trace_or_with_an_error_fails(fake, capsys):
    _Fake.answer = (200, {}, good_body(session="s-9"))
    assert main([fake, "--session", "s-9"], {"SMOKE_TOKEN": SECRET_TOKEN}) == 1
    _Fake.answer = (502, {"x-amzn-trace-id": "Root=1"}, b'{"error":{"code":"model_unavailable"}}')
    assert main([fake, "--session", "s-9"], {"SMOKE_TOKEN": SECRET_TOKEN}) == 1
    err = capsys.readouterr().err
    assert "no trace header" in err and "status 502" in err and SECRET_TOKEN not in err


def test_an_unreachable_api_fails_without_a_traceback(capsys):
    assert main(["http://127.0.0.1:9", "--timeout", "5"], {"SMOKE_TOKEN": "t"}) == 1
    assert capsys.readouterr().err.startswith("FAIL http://127.0.0.1:9")


def test_one_turn_against_the_local_stack(capsys):
    stack = LocalStack("dev", moto_port=None, log=lambda line: None).start()
    try:
        assert main([stack.rest.url], {"SMOKE_TOKEN": stack.dev_token, "SMOKE_API_KEY": stack.api_key}) == 0
    finally:
        stack.stop()
    # The in-process handlers log to stdout too: find the script's own line.
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("OK ")]
    assert line.startswith(f"OK {stack.rest.url} session smoke-") and '"x-request-id"' in line and "42" in line
