"""Idempotent REST requests: the Idempotency-Key protocol as one context manager.

    with idempotent(store.idempotency, request, body) as slot:
        if slot.replay is not None:
            return slot.replay  # the first response to this key, replayed
        ...  # the work, named after slot.key_hash when there is a key
        return slot.complete(202, accepted, headers)

Entering claims the caller's key for this request (one conditional PutItem that hands back
the record already there, as Powertools' idempotency utility does): without the header the
request runs unguarded (an empty header is no key, as on the chat route, whose template
cannot tell the two apart); a key that breaks the rule is 400; a key used with another body
is 422; a completed request is replayed; one still in progress is 409 for
``IDEMPOTENCY_LOCK_SECONDS``, after which its claim counts as abandoned and is taken over.
An error inside the block gives the key back, so a retry runs at once. Both are safe only
for work that is idempotent itself: ``POST /v1/tasks`` names the execution after the key.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgspec

from handlers.shared.api import ApiError, Request, respond
from handlers.shared.models import IDEMPOTENCY_KEY_RULE, idempotency_key_hash, valid_idempotency_key
from handlers.shared.store import IdempotencyStore

# A claim older than this is taken to be from a request that died.
IDEMPOTENCY_LOCK_SECONDS = 30


class IdempotentSlot:
    """One request's hold on its Idempotency-Key, if it sent one."""

    def __init__(
        self, keys: IdempotencyStore, request: Request, key_hash: str | None, replay: dict | None = None
    ) -> None:
        self._keys = keys
        self._request = request
        self.key_hash = key_hash
        """The key, hashed with the caller: a stable name for what the request creates."""
        self.replay = replay
        """The response to return instead of running the request again, if there is one."""

    def complete(self, status: int, body: Any, headers: dict[str, str] | None = None) -> dict:
        """The response, stored first (without ``headers``) for replays of this key."""
        if self.key_hash is not None:
            self._keys.complete(self._request.caller, self.key_hash, status, msgspec.to_builtins(body))
        return respond(status, body, self._request, headers)


@contextmanager
def idempotent(
    keys: IdempotencyStore, request: Request, body: msgspec.Struct, clock: Callable[[], float] = time.time
) -> Iterator[IdempotentSlot]:
    """Claim the request's Idempotency-Key for the block, and give it back if the block fails."""
    slot = _claim(keys, request, body, clock)
    try:
        yield slot
    except Exception:
        if slot.key_hash is not None and slot.replay is None:
            keys.release(request.caller, slot.key_hash)
        raise


def _claim(
    keys: IdempotencyStore, request: Request, body: msgspec.Struct, clock: Callable[[], float]
) -> IdempotentSlot:
    key = request.header("idempotency-key") or None
    if key is None:
        return IdempotentSlot(keys, request, None)
    if not valid_idempotency_key(key):
        raise ApiError(400, "invalid_request", IDEMPOTENCY_KEY_RULE, field="Idempotency-Key")
    caller = request.caller
    key_hash = idempotency_key_hash(caller, key=key)
    request_hash = hashlib.sha256(msgspec.json.encode(body)).hexdigest()
    existing = keys.claim(caller, key_hash, request_hash)
    if existing is None:
        return IdempotentSlot(keys, request, key_hash)
    if existing.request_hash != request_hash:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body",
            field="Idempotency-Key",
        )
    if existing.status == "COMPLETED":
        replay = respond(existing.status_code or 200, existing.body, request, {"idempotent-replayed": "true"})
        return IdempotentSlot(keys, request, key_hash, replay)
    if clock() * 1000 - existing.created_at_ms < IDEMPOTENCY_LOCK_SECONDS * 1000:
        raise ApiError(
            409,
            "request_in_progress",
            "a request with this Idempotency-Key is still in progress",
            headers={"retry-after": "1"},
        )
    return IdempotentSlot(keys, request, key_hash)  # an abandoned claim: take it over
