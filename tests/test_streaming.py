"""Chunked answers to WebSocket connections: intact, in order, no frame over 32 KB; gone connections."""

from __future__ import annotations

import json
import random

import boto3
import pytest
from botocore.stub import Stubber

from handlers.shared.store import Store
from handlers.shared.streaming import (
    FRAME_BYTES,
    MESSAGE_BYTES,
    AnswerStream,
    chunk_frames,
    final_message,
    management_api_poster,
)
from tests.conftest import REGION, TABLE_NAME

ALPHABET = 'abcdefghij ABCDEFGHIJ 0123456789 "quotes" \\back\\slash\\ \n\t é ü ß 漢字 😀🚀 \u2028 \x01 '


def text_of(size: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    out, length = [], 0
    while length < size:
        piece = rng.choice(ALPHABET)
        out.append(piece)
        length += len(piece.encode())
    return "".join(out)


class Recorder:
    def __init__(self, gone_after: int | None = None):
        self.frames: list[bytes] = []
        self.gone_after = gone_after

    def __call__(self, connection_id: str, data: bytes) -> None:
        from handlers.shared.streaming import ConnectionGone

        if self.gone_after is not None and len(self.frames) >= self.gone_after:
            raise ConnectionGone(connection_id)
        self.frames.append(data)


@pytest.mark.parametrize("size", [1_024, 40 * 1024, 200 * 1024, 1024 * 1024], ids=["1KB", "40KB", "200KB", "1MB"])
def test_answers_arrive_intact_in_order_and_no_frame_is_over_32kb(size):
    answer = text_of(size)
    recorder = Recorder()
    stream = AnswerStream("conn-1", "msg-1", recorder, on_gone=lambda c: None)
    # The model's deltas arrive in uneven pieces, as a stream does.
    rng, position = random.Random(size), 0
    while position < len(answer):
        step = rng.randint(1, 3_000)
        stream.write(answer[position : position + step])
        position += step
    stream.close({"toolCalls": []})
    *chunks, final = [json.loads(f) for f in recorder.frames]
    assert all(len(f) <= FRAME_BYTES for f in recorder.frames[:-1]), "every chunk fits one frame"
    assert [c["seq"] for c in chunks] == list(range(len(chunks))), "numbered from 0 without gaps"
    shuffled = chunks[:]
    random.Random(1).shuffle(shuffled)
    assert "".join(c["text"] for c in sorted(shuffled, key=lambda c: c["seq"])) == answer, "reordered by seq: intact"
    assert final["type"] == "final" and final["messageId"] == "msg-1" and final["chunks"] == len(chunks)
    assert len(recorder.frames[-1]) <= MESSAGE_BYTES
    assert ("answer" in final) == (size < 100 * 1024), "the final message carries the answer only when it fits"
    if "answer" in final:
        assert final["answer"] == answer


def test_frames_never_split_an_escape_or_a_character():
    nasty = ("\\" * 5 + "😀" + '"' + "\u0001") * 20_000
    frames = list(chunk_frames("m", nasty, frame_bytes=1_000))
    assert all(len(f) <= 1_000 for f in frames)
    assert "".join(json.loads(f)["text"] for f in frames) == nasty


def test_a_gone_connection_is_removed_once_and_never_written_again():
    removed = []
    recorder = Recorder(gone_after=2)
    stream = AnswerStream("conn-9", "msg", recorder, on_gone=removed.append, flush_bytes=10)
    for _ in range(50):
        stream.write("x" * 100)
    stream.close()
    assert removed == ["conn-9"]
    assert len(recorder.frames) == 2 and stream.gone
    assert "".join(stream.text) == "x" * 5_000, "the answer is still complete for the message log"


def test_gone_exception_from_the_management_api_is_recognised(dynamodb):
    client = boto3.client(
        "apigatewaymanagementapi", region_name=REGION, endpoint_url="https://abc.execute-api.us-east-1.amazonaws.com/v1"
    )
    store = Store(TABLE_NAME, REGION, ttl_days=1, client=dynamodb)
    store.connections.put("conn-7", "alice")
    with Stubber(client) as stub:
        stub.add_response(
            "post_to_connection",
            {},
            {"ConnectionId": "conn-7", "Data": b'{"type":"chunk","messageId":"m","seq":0,"text":"hi"}'},
        )
        stub.add_client_error("post_to_connection", "GoneException", "gone", 410)
        stream = AnswerStream(
            "conn-7", "m", management_api_poster(client), on_gone=store.connections.delete, flush_bytes=1
        )
        stream.write("hi")
        stream.write("there")  # 410: the connection is removed
        stream.write("more")  # never sent: no pending stub response would be consumed
        stream.close()
        stub.assert_no_pending_responses()
    assert store.connections.get("conn-7") is None


def test_other_errors_from_the_management_api_propagate():
    client = boto3.client(
        "apigatewaymanagementapi", region_name=REGION, endpoint_url="https://abc.execute-api.us-east-1.amazonaws.com/v1"
    )
    with Stubber(client) as stub:
        stub.add_client_error("post_to_connection", "LimitExceededException", "slow down", 429)
        with pytest.raises(Exception, match="slow down"):
            management_api_poster(client)("c", b"x")


def test_a_huge_final_drops_the_tool_calls_not_the_limit():
    encoded = final_message("m", 3, 3, "x" * 200_000, {"toolCalls": [{"output": "y" * 200_000}]})
    assert len(encoded) <= MESSAGE_BYTES
    assert json.loads(encoded)["toolCallsOmitted"] is True


def test_a_failing_post_stops_streaming_without_failing_the_turn():
    def throttled(connection_id, data):
        raise RuntimeError("LimitExceededException")

    stream = AnswerStream("c", "m", throttled, on_gone=lambda c: pytest.fail("not gone"), flush_bytes=1)
    stream.write("hello")
    stream.write(" world")
    stream.close()
    assert stream.broken and "".join(stream.text) == "hello world"


def test_lone_surrogates_are_replaced_not_fatal():
    frames = list(chunk_frames("m", "split pair \ud83d here"))
    assert json.loads(frames[0])["text"] == "split pair ? here"
