"""Conversations: one item per step, the messages one model call adds, at position ``seq``.

The position is the concurrency control: a step's write is conditional on its position
being free, so of two turns that read the same conversation one writes and the other gets
:class:`ConflictError`, and nothing is ever overwritten.

A session's steps are read and written in its home replica (``SessionStore.home``), and a
step's key names that replica (``MSG#<seq>#<replica>``), so the promise holds across regions
too, under any replication lag: the condition is checked where every write of that key is,
and two regions that took the same position (the old home's last steps arriving after a
failover) keep two items, in one order every replica agrees on (position, then replica).
A step written to another replica than the newest step's (the session's home moved), or the
first step a session's later home sees, skips ``HOME_MOVE_SKIP`` positions, so the old home's
steps that are still on their way sort before it, as they happened. Steps carry their
writer's user: if two users ever created the same session id in two regions at once, each
step stays with the session's owner only.
A turn run again under the same Idempotency-Key in another region (its first run's claim
had not replicated when that region failed) shows once: the later run, the one its client
was answered with; both stay in the table.

A step's messages are JSON text (``messages``) or, once that text is ``COMPRESS_FROM``
bytes or more and zlib makes it smaller, the compressed JSON as a Binary attribute
(``messagesZ``). AWS's best practice for long text such as forum messages: "Compressing
large attribute values can let them fit within item limits in DynamoDB and reduce your
storage costs", the compressed output stored "in a Binary attribute type"
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-use-s3-too.html); a
write's capacity follows the item's size, a Binary value counted by its length in bytes
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html).
Every step is written to three replicas, replicated again when TTL deletes it, and kept
until then with point-in-time recovery: an answer of a few hundred tokens is 1.5-2 KB as
text and under 1 KB compressed, one write unit instead of two. Both forms are read.
"""

from __future__ import annotations

import json
import random
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from handlers.shared import table as keys
from handlers.shared.store.base import (
    MAX_PAYLOAD_BYTES,
    InvalidCursorError,
    StateError,
    Table,
    TransactWrite,
    after,
    decode_cursor,
    encode_cursor,
    from_item,
    json_attribute,
    page_size,
    text_attribute,
    to_item,
)
from handlers.shared.store.idempotency import IdempotencyStore
from handlers.shared.store.sessions import SessionMeta, SessionStore, session_meta

MESSAGE_ROLES = ("user", "assistant", "tool", "failed")
MAX_MESSAGES_PER_STEP = 4
COMPRESS_FROM = 512
"""Steps whose messages are this many bytes of JSON or more are stored compressed (below it
the item is one write unit either way)."""
COMPRESSED_ATTRIBUTE = "messagesZ"
APPEND_ATTEMPTS = 10
APPEND_BACKOFF_BASE_S = 0.005
APPEND_BACKOFF_CAP_S = 0.2
HOME_MOVE_SKIP = 1_000
"""Positions a step skips when it is written to another replica than the session's newest
step: more than any region writes to one session within a replication lag."""


def pack_messages(text: str) -> dict[str, Any]:
    """The step's messages attribute: the JSON text, or zlib of it when that is smaller."""
    encoded = text.encode()
    if len(encoded) >= COMPRESS_FROM:
        packed = zlib.compress(encoded, 6)
        if len(packed) < len(encoded):
            return {COMPRESSED_ATTRIBUTE: packed}
    return {"messages": text}


def unpack_messages(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A step item's messages, whichever form it was written in."""
    if COMPRESSED_ATTRIBUTE not in item:
        return json.loads(item["messages"])
    raw = item[COMPRESSED_ATTRIBUTE]
    data = bytes(getattr(raw, "value", raw))  # boto3 reads Binary attributes as Binary
    inflate = zlib.decompressobj()
    # Never more than a step may hold (what json_attribute lets through): a corrupt or
    # hostile value cannot make a reader inflate without bound.
    text = inflate.decompress(data, MAX_PAYLOAD_BYTES + 1)
    if len(text) > MAX_PAYLOAD_BYTES or inflate.unconsumed_tail:
        raise StateError(f"step {item[keys.SORT_KEY]!r} holds more than {MAX_PAYLOAD_BYTES} bytes of messages")
    return json.loads(text)


class ConflictError(StateError):
    """Optimistic concurrency lost: another writer took the conversation's next position
    (or created the session, or the session's home moved) since the caller read it."""

    def __init__(self, session_id: str, seq: int):
        self.session_id = session_id
        self.seq = seq
        super().__init__(f"step {seq} of session {session_id!r} was written by another turn: reload and retry")


class Message(msgspec.Struct, frozen=True):
    session_id: str
    message_id: str  # "<seq:08d>-<replica>-<index>": the step that wrote it and its place in it
    role: str  # user, assistant, tool, or failed (the marker of a turn that did not complete)
    text: str
    tool_calls: list[dict[str, Any]]
    usage: dict[str, int] | None
    created_at_ms: int
    region: str
    expires_at: int
    seq: int = 0
    turn_id: str = ""
    """The execution (turn or task) that wrote it."""
    replica: str = ""
    """The replica its step was written to."""
    history_from: int | None = None
    """An assistant message: the step from which the earlier turns its request sent start
    (``handlers.shared.turns.bounded_history``)."""


def message_id(seq: int, replica: str, index: int) -> str:
    return f"{seq:08d}-{replica}-{index}"


class NewMessage(msgspec.Struct, frozen=True):
    """A message to be written; its id comes from the step it is written in."""

    role: str
    text: str
    tool_calls: list[dict[str, Any]] = msgspec.field(default_factory=list)
    usage: dict[str, int] | None = None
    history_from: int | None = None


class ConversationPage(msgspec.Struct, frozen=True):
    meta: SessionMeta | None  # only on the first page
    messages: list[Message]  # newest first
    next_cursor: str | None
    last_seq: int = 0
    """The newest step of the session (0: none), on the first page."""
    last_replica: str = ""
    """The replica of that step."""
    replica: str = ""
    """The replica the page was read from: the session's home when it was read."""
    primary: str = ""
    """The session's first home (its first region in rendezvous order)."""

    def next_seq(self) -> int:
        """The position of the next step, written to ``replica``: the next one, unless the
        home has moved (the newest step is another replica's, or there is none and this is
        not the session's first home), then ``HOME_MOVE_SKIP`` on."""
        if self.last_replica == self.replica or (not self.last_replica and self.replica in ("", self.primary)):
            return self.last_seq + 1
        return self.last_seq + HOME_MOVE_SKIP


def _step_number(value: Any) -> int | None:
    """A stored step position, or None for anything else (a damaged item is read as if the
    field were absent, which only costs the next call a cache miss)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _messages(item: Mapping[str, Any]) -> list[Message]:
    """A step item's messages, oldest first."""
    seq = keys.step_seq(item[keys.SORT_KEY])
    replica = keys.step_replica(item[keys.SORT_KEY])
    session_id = after(keys.SESSION_PREFIX, item[keys.PARTITION_KEY])
    stored = unpack_messages(item)
    return [
        Message(
            session_id=session_id,
            message_id=message_id(seq, replica, index),
            role=entry["role"],
            text=entry.get("text", ""),
            tool_calls=entry.get("toolCalls") or [],
            usage=entry.get("usage"),
            created_at_ms=int(item["createdAt"]),
            region=item[keys.REGION_ATTRIBUTE],
            expires_at=int(item[keys.TTL_ATTRIBUTE]),
            seq=seq,
            turn_id=item.get("turn", ""),
            replica=replica,
            history_from=_step_number(entry.get("historyFrom")),
        )
        for index, entry in enumerate(stored)
    ]


def _hidden_turns(steps: Sequence[Mapping[str, Any]], owner: str | None) -> tuple[set[str], set[str]]:
    """Of a page's step items: the sort keys of steps written by another user than the
    session's owner, and the turns run again under the same Idempotency-Key elsewhere (all
    but the latest run of each key)."""
    foreign = {s[keys.SORT_KEY] for s in steps if owner is not None and s.get("userId", owner) != owner}
    runs: dict[str, list[tuple[int, str, str]]] = {}
    for step in steps:
        if "claim" in step:
            runs.setdefault(step["claim"], []).append(
                (int(step["createdAt"]), step[keys.SORT_KEY], step.get("turn", ""))
            )
    superseded = {turn for claimed in runs.values() for _, _, turn in sorted(claimed)[:-1]}
    return foreign, superseded


class ConversationStore:
    """The steps of a session. A step's write may carry writes of the session and of an
    idempotency key, which those aggregates hand out."""

    def __init__(self, table: Table, sessions: SessionStore, idempotency: IdempotencyStore) -> None:
        self.table = table
        self.sessions = sessions
        self.idempotency = idempotency

    def _step_values(
        self,
        at: Table,
        session_id: str,
        seq: int,
        turn_id: str,
        messages: Sequence[NewMessage],
        now_ms: int,
        user_id: str | None,
        claim_key: str | None,
    ) -> dict[str, Any]:
        if not 1 <= len(messages) <= MAX_MESSAGES_PER_STEP:
            raise ValueError(f"a step holds 1..{MAX_MESSAGES_PER_STEP} messages, got {len(messages)}")
        stored = []
        for message in messages:
            if message.role not in MESSAGE_ROLES:
                raise ValueError(f"role must be one of {', '.join(MESSAGE_ROLES)}; got {message.role!r}")
            entry: dict[str, Any] = {"role": message.role, "text": text_attribute("text", message.text)}
            if message.tool_calls:
                entry["toolCalls"] = message.tool_calls
            if message.usage is not None:
                entry["usage"] = message.usage
            if message.history_from is not None:
                entry["historyFrom"] = message.history_from
            stored.append(entry)
        return {
            keys.PARTITION_KEY: keys.session_pk(session_id),
            keys.SORT_KEY: keys.step_sk(seq, at.region),
            "turn": keys.key_part("turn id", turn_id),
            **pack_messages(json_attribute("messages", stored)),
            "createdAt": now_ms,
            **({"userId": keys.key_part("userId", user_id)} if user_id else {}),
            **({"claim": claim_key} if claim_key else {}),
            **at.stamp(now_ms),
        }

    def append_step(
        self,
        session_id: str,
        seq: int,
        messages: Sequence[NewMessage],
        *,
        turn_id: str,
        user_id: str | None = None,
        new_session: bool = False,
        touch: bool = False,
        claim_key: str | None = None,
        replica: str | None = None,
    ) -> list[Message]:
        """Write one step of the conversation, its messages in one item at position ``seq``,
        in the session's home replica: ``replica`` (the one ``seq`` was read from; a
        :class:`ConflictError` when it is no longer the home) or the home now.

        Most steps are this one conditional PutItem. A session's first step also creates its
        metadata (owned by ``user_id``), a step with ``touch`` refreshes the session's place
        in the recent list, and a ``claim_key`` (the hash of a turn's Idempotency-Key) is
        claimed: those go in one TransactWriteItems with the step, all or nothing (a
        repeated key raises DuplicateRequestError, another user's session
        SessionOwnershipError, a lost position :class:`ConflictError`).
        """
        at = self.sessions.home(session_id, replica)
        if replica is not None and at.region != replica:
            raise ConflictError(session_id, seq)  # the home moved since the caller read it
        now_ms = self.table.now_ms()
        values = self._step_values(at, session_id, seq, turn_id, messages, now_ms, user_id, claim_key)
        step = {
            "TableName": at.name,
            "Item": to_item(values),
            "ConditionExpression": "attribute_not_exists(#sk)",
            "ExpressionAttributeNames": {"#sk": keys.SORT_KEY},
        }
        others: list[TransactWrite] = []
        if (new_session or touch or claim_key is not None) and not user_id:
            raise ValueError("a step that creates or touches the session, or claims a key, needs its user_id")
        if new_session:
            others.append(self.sessions.create_write(at, user_id, session_id, now_ms))
        elif touch:
            others.append(self.sessions.touch_write(at, session_id, user_id, now_ms))
        if claim_key is not None:
            others.extend(self.idempotency.turn_claim_writes(at, user_id, claim_key, session_id, turn_id, now_ms))
        at.put_with(step, ConflictError(session_id, seq), others)
        return _messages(values)

    def append_message(
        self, session_id: str, message: NewMessage, *, turn_id: str = "direct", user_id: str | None = None
    ) -> Message:
        """Append one message as a step of its own at the next free position: read the newest
        step, write after it (two round trips). A lost race is retried after a pause with
        full jitter, so two writers in step do not keep colliding; ConflictError after
        ``APPEND_ATTEMPTS``."""
        for attempt in range(APPEND_ATTEMPTS):
            page = self.load(session_id, limit=1)
            seq = page.next_seq()
            try:
                return self.append_step(
                    session_id, seq, [message], turn_id=turn_id, user_id=user_id, replica=page.replica
                )[0]
            except ConflictError:
                pause = min(APPEND_BACKOFF_CAP_S, APPEND_BACKOFF_BASE_S * 2**attempt)
                time.sleep(random.uniform(0, pause))  # noqa: S311 - jitter, not a secret
        raise ConflictError(session_id, seq)

    def load(
        self,
        session_id: str,
        limit: int = 20,
        cursor: str | None = None,
        replica: str | None = None,
        owner: str | None = None,
    ) -> ConversationPage:
        """The session's newest ``limit`` messages, newest first, with its metadata and newest
        step on the first page: one Query in its home replica (``replica`` when given and
        available). Pass ``next_cursor`` back for older ones, with the session's ``owner``
        (later pages carry no metadata; without it, one more Query reads it)."""
        limit = page_size(limit)
        return self.table.on_home(
            keys.session_pk(session_id), lambda at: self._load(at, session_id, limit, cursor, owner), replica
        )

    def _load(self, at: Table, session_id: str, limit: int, cursor: str | None, owner: str | None) -> ConversationPage:
        pk = keys.session_pk(session_id)
        upper, skip = keys.SESSION_META_UPPER, 0
        if cursor is not None:
            start = decode_cursor(cursor, ["sk", "skip"])
            upper, skip_text = start["sk"], start["skip"]
            if not upper.startswith(keys.STEP_PREFIX) or not skip_text.isdigit():
                raise InvalidCursorError(f"cursor {cursor!r} is not a cursor this API returned")
            skip = int(skip_text)
        response = at.client.query(
            TableName=at.name,
            KeyConditionExpression="#pk = :pk AND #sk BETWEEN :first AND :upper",
            ExpressionAttributeNames={"#pk": keys.PARTITION_KEY, "#sk": keys.SORT_KEY},
            ExpressionAttributeValues=to_item({":pk": pk, ":first": keys.STEP_PREFIX, ":upper": upper}),
            ScanIndexForward=False,
            # Every step holds at least one message; one metadata item per replica at most,
            # and one more to know whether older steps follow.
            Limit=limit + len(at.replicas.regions) + 1,
        )
        items = [from_item(raw) for raw in response.get("Items", [])]
        metas = [i for i in items if i[keys.SORT_KEY].startswith(keys.SESSION_META_PREFIX)]
        steps = [i for i in items if i[keys.SORT_KEY].startswith(keys.STEP_PREFIX)]
        meta = session_meta(metas) if metas else None
        if meta is not None:
            owner = meta.user_id
        elif owner is None and cursor is not None:
            found = self.sessions.get(session_id, at.region)
            owner = found.user_id if found is not None else None
        foreign, superseded = _hidden_turns(steps, owner)
        messages: list[Message] = []
        last_seq, last_replica = 0, ""
        if cursor is None and steps:
            last_seq, last_replica = keys.step_seq(steps[0][keys.SORT_KEY]), keys.step_replica(steps[0][keys.SORT_KEY])
        next_cursor = None
        for position, item in enumerate(steps):
            if item[keys.SORT_KEY] in foreign or item.get("turn", "") in superseded:
                step_messages: list[Message] = []
            else:
                step_messages = list(reversed(_messages(item)))  # newest first within the step
            if item[keys.SORT_KEY] == upper and skip:
                step_messages = step_messages[skip:]
                consumed_before = skip
            else:
                consumed_before = 0
            room = limit - len(messages)
            if room <= 0:
                next_cursor = encode_cursor({"sk": item[keys.SORT_KEY], "skip": str(consumed_before)})
                break
            messages.extend(step_messages[:room])
            if len(step_messages) > room:
                next_cursor = encode_cursor({"sk": item[keys.SORT_KEY], "skip": str(consumed_before + room)})
                break
            if position == len(steps) - 1 and "LastEvaluatedKey" in response:
                # The page ended on a step boundary and DynamoDB has more: start after it.
                next_cursor = encode_cursor(
                    {"sk": item[keys.SORT_KEY], "skip": str(consumed_before + len(step_messages))}
                )
        return ConversationPage(
            meta=meta,
            messages=messages,
            next_cursor=next_cursor,
            last_seq=last_seq,
            last_replica=last_replica,
            replica=at.region,
            primary=at.replicas.order(pk)[0],
        )
