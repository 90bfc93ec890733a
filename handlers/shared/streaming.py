"""Streaming an answer to a WebSocket connection in frames API Gateway accepts.

API Gateway WebSocket frames are at most 32 KB and messages at most 128 KB. The answer is
sent as JSON chunk frames ``{"type": "chunk", "messageId", "seq", "text"}``, each at most
``FRAME_BYTES`` once encoded, numbered from 0 so the client can reorder them and see gaps,
then one ``{"type": "final", "messageId", "seq", "chunks", ...}`` message that names the
stored message: a client that missed frames (or reconnects) reads the whole answer from
the message log (``GET /v1/sessions/{id}/messages``).

Text is cut on its JSON-escaped form, never inside an escape sequence or a UTF-8 character,
so every frame decodes to an exact slice of the answer.

A connection that is gone (``GoneException``, HTTP 410) is removed once and never written
to again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from handlers.shared.log import get_logger

_logger = get_logger("streaming")

FRAME_BYTES = 32 * 1024
MESSAGE_BYTES = 128 * 1024
FLUSH_BYTES = 4 * 1024


def _clean(text: str) -> str:
    """Lone surrogates (half of a pair split across deltas) cannot be UTF-8: replace them."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate: rare, so only then pay for replacing
        return text.encode("utf-8", "replace")


def _frame_prefix(message_id: str, seq: int) -> bytes:
    return ('{"type":"chunk","messageId":' + json.dumps(message_id) + f',"seq":{seq},"text":"').encode()


_FRAME_SUFFIX = b'"}'


def _safe_cut(escaped: bytes, limit: int) -> int:
    """The largest cut <= limit that splits neither a UTF-8 character nor a JSON escape."""
    cut = min(limit, len(escaped))
    if cut == len(escaped):
        return cut
    while cut > 0 and (escaped[cut] & 0xC0) == 0x80:  # inside a multi-byte character
        cut -= 1
    # Inside an escape? Look back for the backslash that starts it (at most \uXXXX: 6 bytes).
    start = escaped.rfind(b"\\", max(0, cut - 6), cut)
    if start != -1:
        run = 0
        while start - run - 1 >= 0 and escaped[start - run - 1] == 0x5C:
            run += 1
        if run % 2 == 0:  # an unescaped backslash: an escape begins at `start`
            length = 6 if escaped[start + 1 : start + 2] == b"u" else 2
            if start + length > cut:
                cut = start
    return cut


def chunk_frames(message_id: str, text: str, first_seq: int = 0, frame_bytes: int = FRAME_BYTES) -> Iterator[bytes]:
    """Encoded chunk frames carrying ``text``, each at most ``frame_bytes`` long."""
    escaped = _utf8(json.dumps(text, ensure_ascii=False)[1:-1])
    seq, position = first_seq, 0
    while position < len(escaped):
        prefix = _frame_prefix(message_id, seq)
        room = frame_bytes - len(prefix) - len(_FRAME_SUFFIX)
        if room < 12:
            raise ValueError("frame_bytes is too small for a chunk")
        cut = position + _safe_cut(escaped[position:], room)
        if cut == position:
            raise ValueError("could not cut the text")  # pragma: no cover - room >= 12 always fits one escape
        yield prefix + escaped[position:cut] + _FRAME_SUFFIX
        position, seq = cut, seq + 1


def final_message(message_id: str, seq: int, chunks: int, answer: str, extra: dict[str, Any] | None = None) -> bytes:
    """The closing message; it carries the answer itself only when it fits one message."""
    body: dict[str, Any] = {"type": "final", "messageId": message_id, "seq": seq, "chunks": chunks, **(extra or {})}
    with_answer = json.dumps({**body, "answer": _clean(answer)}, ensure_ascii=False).encode()
    if len(with_answer) <= MESSAGE_BYTES:
        return with_answer
    encoded = json.dumps(body, ensure_ascii=False).encode()
    if len(encoded) > MESSAGE_BYTES:
        body.pop("toolCalls", None)
        body["toolCallsOmitted"] = True
        encoded = json.dumps(body, ensure_ascii=False).encode()
    return encoded


def progress_message(message_id: str, step: int, tool_calls: list[dict[str, Any]]) -> bytes:
    """A step that calls tools: which, with what input. The turn's answer still comes in its
    one ``final`` frame."""
    calls = [{"name": c["name"], "input": c.get("input")} for c in tool_calls]
    body = {"type": "progress", "messageId": message_id, "step": step, "toolCalls": calls}
    encoded = json.dumps(body, ensure_ascii=False).encode()
    if len(encoded) > MESSAGE_BYTES:
        body["toolCalls"] = [{"name": c["name"]} for c in calls]
        encoded = json.dumps(body, ensure_ascii=False).encode()
    return encoded


def error_message(code: str, message: str) -> bytes:
    """A turn that failed: the client gets this instead of a ``final`` frame."""
    return json.dumps({"type": "error", "code": code, "message": message}).encode()


class ConnectionGone(Exception):
    """The client disconnected (API Gateway answered 410)."""


class AnswerStream:
    """Buffers the model's text as it arrives and posts it to one connection in frames."""

    def __init__(
        self,
        connection_id: str,
        message_id: str,
        post: Callable[[str, bytes], None],
        on_gone: Callable[[str], None],
        flush_bytes: int = FLUSH_BYTES,
    ) -> None:
        self.connection_id = connection_id
        self.message_id = message_id
        self._post = post
        self._on_gone = on_gone
        self._flush_bytes = flush_bytes
        self._buffer: list[str] = []
        self._buffered = 0
        self.seq = 0
        self.text: list[str] = []
        self.gone = False
        self.broken = False
        self.frames_sent = 0

    def write(self, delta: str) -> None:
        self.text.append(delta)
        if self.gone or self.broken:
            return
        self._buffer.append(delta)
        self._buffered += len(delta)
        if self._buffered >= self._flush_bytes:
            self.flush()

    def flush(self) -> None:
        if self.gone or self.broken or not self._buffer:
            return
        pending = "".join(self._buffer)
        self._buffer, self._buffered = [], 0
        for frame in chunk_frames(self.message_id, pending, first_seq=self.seq):
            self._send(frame)
            if self.gone or self.broken:
                return
            self.seq += 1

    def close(self, extra: dict[str, Any] | None = None) -> None:
        self.flush()
        if not self.gone and not self.broken:
            self._send(final_message(self.message_id, self.seq, self.seq, "".join(self.text), extra))

    def _send(self, data: bytes) -> None:
        try:
            self._post(self.connection_id, data)
            self.frames_sent += 1
        except ConnectionGone:
            self.gone = True
            self._on_gone(self.connection_id)
        except Exception as error:
            # Streaming is a courtesy: the answer is in the message log either way, and a
            # throttled or failing post must never fail the turn (or look like the model's fault).
            self.broken = True
            _logger.warning(
                "streaming stopped", extra={"connectionId": self.connection_id, "error": type(error).__name__}
            )


def management_api_poster(client: Any) -> Callable[[str, bytes], None]:
    """``post_to_connection`` through an ``apigatewaymanagementapi`` client; a 410 becomes
    ConnectionGone (botocore raises the modeled GoneException)."""
    from botocore.exceptions import ClientError

    def post(connection_id: str, data: bytes) -> None:
        try:
            client.post_to_connection(ConnectionId=connection_id, Data=data)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "GoneException" or status == 410:
                raise ConnectionGone(connection_id) from None
            raise

    return post
