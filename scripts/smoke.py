"""Smoke test of a deployed stack: one chat turn through the REST API, answer and trace checked.

    SMOKE_TOKEN=<jwt> SMOKE_API_KEY=<key> python -m scripts.smoke https://api.agents.example.com

The URL is the REST API's base: the custom domain (`apiUrl` output) or a region's stage URL
(`restEndpoints`). The JWT and the API key come from the environment (or --token /
--api-key, which end up in shell history); neither is ever printed. The turn asks for a
calculation the calculator tool answers (`--message`, `--expect` to change it) and passes
when the API answers 200 with the session's id, a message id and an answer containing the
expected text, and names the request for tracing: API Gateway's `x-amzn-trace-id` (X-Ray)
or `x-request-id` (the local stack). Exit status 0 on success, 1 when a check fails, 2 on
bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

TRACE_HEADERS = ("x-amzn-trace-id", "x-request-id")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class SmokeArgs:
    url: str
    token: str
    api_key: str | None
    message: str
    expect: str
    session_id: str
    timeout: float


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


class UsageError(Exception):
    pass


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> SmokeArgs:
    parser = argparse.ArgumentParser(prog="python -m scripts.smoke", description=__doc__.splitlines()[0])
    parser.add_argument("url", help="REST API base URL (https://, or http:// on loopback)")
    parser.add_argument("--token", help="JWT for the Authorization header (default: $SMOKE_TOKEN)")
    parser.add_argument("--api-key", help="API key for x-api-key (default: $SMOKE_API_KEY)")
    parser.add_argument("--message", default="calculate 6*7", help="what to ask (default: %(default)s)")
    parser.add_argument("--expect", default="42", help="text the answer must contain (default: %(default)s)")
    parser.add_argument("--session", help="session id (default: a new one)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the answer")
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS):
        raise UsageError(f"{args.url}: use https:// (plain http only on loopback)")
    if not parts.hostname or parts.query or parts.fragment:
        raise UsageError(f"{args.url}: give the API's base URL, without query or fragment")
    token = args.token or environ.get("SMOKE_TOKEN")
    if not token:
        raise UsageError("no JWT: set SMOKE_TOKEN (or --token)")
    if token.lower().startswith("bearer "):
        token = token[7:]
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    return SmokeArgs(
        url=url,
        token=token,
        api_key=args.api_key or environ.get("SMOKE_API_KEY") or None,
        message=args.message,
        expect=args.expect,
        session_id=args.session or f"smoke-{uuid.uuid4().hex[:12]}",
        timeout=args.timeout,
    )


def send_turn(args: SmokeArgs) -> Reply:
    headers = {
        "Authorization": f"Bearer {args.token}",
        "content-type": "application/json",
        "x-correlation-id": f"smoke-{uuid.uuid4().hex}",
    }
    if args.api_key:
        headers["x-api-key"] = args.api_key
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked in parse_args
        f"{args.url}/v1/sessions/{args.session_id}/messages",
        data=json.dumps({"message": args.message}).encode(),
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:  # noqa: S310
            return Reply(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


def check_reply(reply: Reply, session_id: str, expect: str) -> list[str]:
    """What is wrong with the reply; empty when the turn passed."""
    problems = []
    if reply.status != 200:
        problems.append(f"status {reply.status}: {reply.body[:300].decode(errors='replace')}")
    if not any(reply.headers.get(name) for name in TRACE_HEADERS):
        problems.append(f"no trace header ({' or '.join(TRACE_HEADERS)})")
    try:
        body = json.loads(reply.body)
    except ValueError:
        return [*problems, "the body is not JSON"]
    if not isinstance(body, dict):
        return [*problems, "the body is not a JSON object"]
    if reply.status == 200:
        if body.get("sessionId") != session_id:
            problems.append(f"sessionId {body.get('sessionId')!r}, sent {session_id!r}")
        if not body.get("messageId"):
            problems.append("no messageId")
        answer = body.get("answer")
        if not isinstance(answer, str) or expect not in answer:
            problems.append(f"the answer does not contain {expect!r}: {str(answer)[:300]!r}")
    return problems


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    try:
        args = parse_args(argv, os.environ if environ is None else environ)
    except UsageError as error:
        print(f"smoke: {error}", file=sys.stderr)
        return 2
    try:
        reply = send_turn(args)
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        print(f"FAIL {args.url}: {error}", file=sys.stderr)
        return 1
    problems = check_reply(reply, args.session_id, args.expect)
    trace = {name: reply.headers[name] for name in TRACE_HEADERS if reply.headers.get(name)}
    if problems:
        for problem in problems:
            print(f"FAIL {problem}", file=sys.stderr)
        return 1
    answer = json.loads(reply.body)["answer"]
    print(f"OK {args.url} session {args.session_id}: {answer[:200]!r} {json.dumps(trace)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
