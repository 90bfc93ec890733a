"""Time-sortable unique ids (ULID layout: 48-bit milliseconds + 80 random bits, Crockford base32).

Written here rather than taken from a package so the Lambda archives stay dependency-free;
the layout is the public ULID spec. Ids made by one process are strictly increasing even
within the same millisecond (the random part is incremented), so a writer's own messages
keep their order; ids from different writers are unique by their 80 random bits.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_RANDOM_MAX = (1 << _RANDOM_BITS) - 1
ULID_LENGTH = 26


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


class MonotonicUlid:
    """A thread-safe ULID source whose ids never go backwards within this process."""

    def __init__(self, clock=time.time, entropy=os.urandom) -> None:
        self._clock = clock
        self._entropy = entropy
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def new(self) -> str:
        with self._lock:
            now_ms = int(self._clock() * 1000)
            if now_ms <= self._last_ms:
                # Same (or an earlier, after a clock step back) millisecond: keep the last
                # timestamp and bump the random part so the order stays strict.
                now_ms = self._last_ms
                random_part = self._last_random + 1
                if random_part > _RANDOM_MAX:
                    now_ms += 1
                    random_part = int.from_bytes(self._entropy(10), "big")
            else:
                random_part = int.from_bytes(self._entropy(10), "big")
            self._last_ms, self._last_random = now_ms, random_part
        return _encode(now_ms, 10) + _encode(random_part, 16)


def ulid_timestamp_ms(ulid: str) -> int:
    """The millisecond timestamp encoded in the first ten characters of a ULID."""
    if len(ulid) != ULID_LENGTH or any(c not in _ALPHABET for c in ulid):
        raise ValueError(f"not a ULID: {ulid!r}")
    value = 0
    for char in ulid[:10]:
        value = value * 32 + _ALPHABET.index(char)
    return value


_default = MonotonicUlid()


def new_ulid() -> str:
    """A new time-sortable unique id from the process-wide source."""
    return _default.new()
