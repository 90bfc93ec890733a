"""Step Functions' HTTP Task (``arn:aws:states:::http:invoke``): a real HTTP request.

As https://docs.aws.amazon.com/step-functions/latest/dg/call-https-apis.html describes it:
ApiEndpoint, Method, Headers, QueryParameters, RequestBody and Transform (URL-encoded bodies
and their array formats); the EventBridge connection's auth and invocation parameters merged
in (the connection's value wins); a 60-second timeout; a non-2xx status fails the task with
``States.Http.StatusCode.<code>``, no answer at all with ``States.Http.Socket``. The
connection's secret goes into the request only.

Not emulated: OAuth connections (API_KEY and BASIC only), redirects (a 3xx fails the task
here rather than carry the connection's key to another host), the connection's Secrets
Manager secret (moto's EventBridge keeps the parameters itself), and the IAM check of
``states:InvokeHTTPEndpoint``.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from local.stepfunctions.errors import TaskFailure

# https://docs.aws.amazon.com/step-functions/latest/dg/call-https-apis.html
# "HTTP Task requests time out after 60 seconds" (Connectivity for an HTTP Task).
_HTTP_TASK_TIMEOUT_SECONDS = 60.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _form_encode(body: dict[str, Any], array_format: str) -> str:
    # https://docs.aws.amazon.com/step-functions/latest/dg/call-https-apis.html
    # Transform.RequestBodyEncoding URL_ENCODED, RequestEncodingOptions.ArrayFormat
    # INDICES (default: a[0]=x&a[1]=y), REPEAT (a=x&a=y), COMMAS (a=x,y), BRACKETS (a[]=x&a[]=y).
    pairs: list[tuple[str, str]] = []
    for key, value in body.items():
        if isinstance(value, list):
            items = [_scalar(item) for item in value]
            if array_format == "REPEAT":
                pairs += [(key, item) for item in items]
            elif array_format == "COMMAS":
                pairs.append((key, ",".join(items)))
            elif array_format == "BRACKETS":
                pairs += [(f"{key}[]", item) for item in items]
            else:
                pairs += [(f"{key}[{i}]", item) for i, item in enumerate(items)]
        else:
            pairs.append((key, _scalar(value)))
    return urllib.parse.urlencode(pairs)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def http_invoke(parameters: dict[str, Any]) -> dict[str, Any]:
    """One HTTP Task call: https://docs.aws.amazon.com/step-functions/latest/dg/call-https-apis.html

    Fields: ApiEndpoint, Method, Authentication.ConnectionArn (all required), Headers,
    QueryParameters, RequestBody, Transform. Output: {Headers, ResponseBody, StatusCode,
    StatusText}. A non-2xx status fails the task with States.Http.StatusCode.<code>; no
    answer at all (refused, reset, timed out) with States.Http.Socket. The connection's
    secret goes into the request only: never into the output, the error or the history.
    """
    endpoint = parameters.get("ApiEndpoint")
    method = str(parameters.get("Method", "")).upper()
    connection_arn = (parameters.get("Authentication") or {}).get("ConnectionArn")
    if not endpoint or not method or not connection_arn:
        raise TaskFailure("States.Runtime", "An HTTP Task needs ApiEndpoint, Method and Authentication.ConnectionArn")
    auth_headers, connection_parameters = _connection_auth(connection_arn)

    headers = {str(k): _scalar(v) for k, v in (parameters.get("Headers") or {}).items()}
    query = list(urllib.parse.parse_qsl(urllib.parse.urlsplit(endpoint).query, keep_blank_values=True))
    for key, value in (parameters.get("QueryParameters") or {}).items():
        values = value if isinstance(value, list) else [value]
        query += [(key, _scalar(item)) for item in values]
    body = parameters.get("RequestBody")
    # call-https-apis.html, "Merging EventBridge connection and HTTP Task definition data":
    # the connection's invocation parameters are added to the request; a key in both takes
    # the connection's value.
    for item in connection_parameters.get("HeaderParameters", []):
        headers[item["Key"]] = item["Value"]
    for item in connection_parameters.get("QueryStringParameters", []):
        query = [(k, v) for k, v in query if k != item["Key"]] + [(item["Key"], item["Value"])]
    body_parameters = connection_parameters.get("BodyParameters", [])
    if body_parameters and (body is None or isinstance(body, dict)):
        body = {**(body or {}), **{item["Key"]: item["Value"] for item in body_parameters}}

    transform = parameters.get("Transform") or {}
    data: bytes | None = None
    if body is not None:
        if transform.get("RequestBodyEncoding") == "URL_ENCODED" and isinstance(body, dict):
            array_format = (transform.get("RequestEncodingOptions") or {}).get("ArrayFormat", "INDICES")
            data = _form_encode(body, array_format).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json; charset=UTF-8")
    headers.update(auth_headers)

    split = urllib.parse.urlsplit(endpoint)
    if split.scheme not in ("http", "https"):
        raise TaskFailure("States.Runtime", f"ApiEndpoint must be an http(s) URL, got {split.scheme!r}")
    url = urllib.parse.urlunsplit(split._replace(query=urllib.parse.urlencode(query)))
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - http(s), checked
    # Redirects are not followed here: a redirect would carry the connection's key to
    # another host; the 3xx fails the task like any non-2xx status.
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=_HTTP_TASK_TIMEOUT_SECONDS) as answer:
            status, reason, answer_headers, raw = answer.status, answer.reason, answer.headers, answer.read()
    except urllib.error.HTTPError as answer:
        status, reason, answer_headers, raw = answer.code, answer.reason, answer.headers, answer.read()
    except (OSError, urllib.error.URLError) as error:  # refused, reset, timed out: no HTTP answer
        raise TaskFailure("States.Http.Socket", f"{type(error).__name__}: {error}") from None

    output = {
        "Headers": _headers_of(answer_headers),
        "ResponseBody": _body_of(raw, answer_headers.get("Content-Type", "")),
        "StatusCode": status,
        "StatusText": reason or "",
    }
    if not 200 <= status < 300:
        raise TaskFailure(f"States.Http.StatusCode.{status}", json.dumps(output))
    return output


def _headers_of(headers: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in headers.items():
        out.setdefault(key, []).append(value)
    return out


def _body_of(raw: bytes, content_type: str) -> Any:
    text = raw.decode("utf-8", errors="replace")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _connection_auth(connection_arn: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The auth header and invocation parameters of an EventBridge connection in moto (created
    with the ordinary ``events.create_connection`` call, as the deployed stack creates it)."""
    from moto.events.models import events_backends

    # arn:<partition>:events:<region>:<account>:connection/<name>/<id>
    parts = connection_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "events" or not parts[5].startswith("connection/"):
        raise TaskFailure("Events.ConnectionResource.ResourceNotFound", f"Not a connection ARN: {connection_arn}")
    region, account, name = parts[3], parts[4], parts[5].split("/")[1]
    connection = events_backends[account][region].connections.get(name)
    if connection is None or connection.arn != connection_arn:
        raise TaskFailure("Events.ConnectionResource.ResourceNotFound", f"Connection {connection_arn} not found")
    auth = connection.auth_parameters
    invocation = auth.get("InvocationHttpParameters") or {}
    if connection.authorization_type == "API_KEY":
        key = auth["ApiKeyAuthParameters"]
        return {key["ApiKeyName"]: key["ApiKeyValue"]}, invocation
    if connection.authorization_type == "BASIC":
        basic = auth["BasicAuthParameters"]
        token = base64.b64encode(f"{basic['Username']}:{basic['Password']}".encode()).decode()
        return {"Authorization": f"Basic {token}"}, invocation
    raise TaskFailure(
        "Events.ConnectionResource.InvalidConnectionState",
        f"The local adapter supports API_KEY and BASIC connections, not {connection.authorization_type}",
    )
