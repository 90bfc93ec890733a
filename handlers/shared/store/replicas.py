"""Which replica of the global table an item's writes go to, and reaching it.

The table is a global table in every region of the stack. Replicas copy each other's writes
asynchronously (typically within a second, with no SLA), a conflict keeps the write with the
latest timestamp per item ("last writer wins"), and a condition expression or a transaction
is checked against the replica it is sent to only
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_HowItWorks.html).
So a conditional write is only as good as the replica it is checked in, and this project
uses AWS's "write to your Region" mode
(https://docs.aws.amazon.com/prescriptive-guidance/latest/dynamodb-global-tables/write-to-your-region.html):
every session (and every Idempotency-Key) has a home replica, and whatever region serves a
request reads and writes the session there.

The home is intrinsic to the key, so every region finds the same one without asking anyone:
rendezvous hashing of the key over the stack's regions gives each key an order of regions,
and its home is the first one that is neither evacuated (the operator's list) nor found
unreachable by this process (a breaker per region, open for ``cooldown_seconds`` after a
call could not reach it). When the home fails, the key's next region becomes its home; when
it comes back, the key returns. A region added to the stack takes over about 1/n of the keys.

What makes a move safe is in the keys, not here: a session's items carry the replica they
are written to (``handlers.shared.table``), so a write made by the old home that had not
replicated yet when it failed, and arrives later, never replaces one made by the new home.
AWS's own account of that case: such writes "are held and propagated after Region A comes
back online" and "if an item in Region B receives an update while there is a pending
propagation of a write operation for that item from Region A, the propagation is suppressed"
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-global-table-design.prescriptive-guidance.evacuation.html).
With keys per replica there is no such item: both writes stay.

Reaching another region's replica is a cross-region call (DynamoDB has regional endpoints
only; AWS's guidance calls remote calls something to anticipate in a failover, not the
best practice for every request:
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-global-table-design.prescriptive-guidance.request-routing.html).
Here a request served far from its session's home pays one round trip to the home per table
call; docs/multi-region.md gives the figures and the trade.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from botocore.exceptions import ClientError, ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError
from botocore.exceptions import ReadTimeoutError as BotocoreReadTimeout

DEFAULT_COOLDOWN_SECONDS = 30.0
"""How long a region found unreachable stays out of the homes of this process. AWS's advice
for handing writes back to a region is to wait about ten times the recent maximum
ReplicationLatency before switching (the evacuation page above); at the usual second or less,
30 s is that with room to spare."""

# What a call to a replica that cannot be reached raises: no connection, no answer in time,
# or DynamoDB answering that the service is not available there.
_UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError, BotocoreReadTimeout, ConnectionClosedError)
_UNAVAILABLE_CODES = {"ServiceUnavailable", "InternalServerError", "InternalFailure"}


class ReplicaUnavailableError(Exception):
    """The replica a key's reads and writes go to could not be reached. Retrying is right:
    the next attempt goes to the key's next region (the breaker is open now)."""

    def __init__(self, region: str, cause: str) -> None:
        self.region = region
        super().__init__(f"the table's replica in {region} could not be reached ({cause}); retry")


def rendezvous_order(key: str, regions: Sequence[str]) -> list[str]:
    """The regions in ``key``'s order: highest random weight first (the same everywhere)."""

    def weight(region: str) -> bytes:
        return hashlib.sha256(f"{region}\n{key}".encode()).digest()

    return sorted(regions, key=weight, reverse=True)


class _Breaker:
    def __init__(self, cooldown_seconds: float, clock: Callable[[], float]) -> None:
        self.cooldown = cooldown_seconds
        self.clock = clock
        self._open_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def trip(self, region: str) -> None:
        with self._lock:
            self._open_until[region] = self.clock() + self.cooldown

    def is_open(self, region: str) -> bool:
        with self._lock:
            until = self._open_until.get(region)
            if until is None:
                return False
            if self.clock() >= until:
                del self._open_until[region]
                return False
            return True


class _GuardedClient:
    """A DynamoDB client of one region whose calls trip that region's breaker when they
    cannot reach it, and then raise :class:`ReplicaUnavailableError`."""

    def __init__(self, client: Any, region: str, breaker: _Breaker) -> None:
        self._client = client
        self._region = region
        self._breaker = breaker

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("_") or name in ("can_paginate", "get_paginator"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attribute(*args, **kwargs)
            except _UNREACHABLE as error:
                self._breaker.trip(self._region)
                raise ReplicaUnavailableError(self._region, type(error).__name__) from None
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code in _UNAVAILABLE_CODES:
                    self._breaker.trip(self._region)
                    raise ReplicaUnavailableError(self._region, code) from None
                raise

        return call


class Replicas:
    """The table's replicas as one process reaches them."""

    def __init__(
        self,
        local_region: str,
        regions: Iterable[str] = (),
        client_for: Callable[[str], Any] | None = None,
        evacuated: Iterable[str] = (),
        cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        regions = list(dict.fromkeys(regions)) or [local_region]
        if local_region not in regions:
            raise ValueError(f"the local region {local_region!r} is not one of the table's regions {regions}")
        unknown = set(evacuated) - set(regions)
        if unknown:
            raise ValueError(f"evacuated regions {sorted(unknown)} are not among the table's regions {regions}")
        self.local_region = local_region
        self.regions = tuple(regions)
        self.evacuated = frozenset(evacuated)
        self._client_for = client_for or _boto3_client
        self._clients: dict[str, _GuardedClient] = {}
        self._lock = threading.Lock()
        self.breaker = _Breaker(cooldown_seconds, clock)

    def client(self, region: str) -> Any:
        """The DynamoDB client of ``region``'s replica (made on first use)."""
        with self._lock:
            guarded = self._clients.get(region)
            if guarded is None:
                if region not in self.regions:
                    raise ValueError(f"{region!r} is not one of the table's regions {list(self.regions)}")
                guarded = self._clients[region] = _GuardedClient(self._client_for(region), region, self.breaker)
            return guarded

    def set_client(self, region: str, client: Any) -> None:
        """Use ``client`` for ``region`` (an existing client, e.g. the one a handler made at
        cold start for its own region)."""
        with self._lock:
            self._clients[region] = _GuardedClient(client, region, self.breaker)

    def order(self, key: str) -> list[str]:
        """Every region, in the order ``key`` prefers them."""
        return rendezvous_order(key, self.regions)

    def available(self, region: str) -> bool:
        return region not in self.evacuated and not self.breaker.is_open(region)

    def home(self, key: str, preferred: str | None = None) -> str:
        """The region ``key``'s reads and writes go to now: ``preferred`` when given and
        available, else the first available region in the key's order. With every region
        out, the key's first region (its calls will say why)."""
        if preferred is not None and self.available(preferred):
            return preferred
        order = self.order(key)
        return next((region for region in order if self.available(region)), order[0])


def _boto3_client(region: str) -> Any:
    import boto3
    from botocore.config import Config

    # A short connect timeout: a region that cannot be reached should cost a second, not the
    # SDK's 60 s default, before the key moves to its next region.
    config = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
    return boto3.client("dynamodb", region_name=region, config=config)
