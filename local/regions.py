"""Which local regions are up, and what a region that is down looks like to a caller.

A region of the local stack is killed by the failover drill and brought back: its gateways
close, its functions fail, its replica stops replicating and cannot be reached. This module
holds that state and the one effect every caller shares: a boto3 client of a region that is
down fails the way a client of an unreachable AWS region does, with botocore's
``EndpointConnectionError`` (what the SDK raises when it cannot connect to an endpoint), before
moto sees the request. Gateways, functions and replication ask ``is_up`` themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import EndpointConnectionError

__all__ = ["Regions"]


class Regions:
    """The local stack's regions, each up or down."""

    def __init__(self, regions: Iterable[str]) -> None:
        self.names = tuple(dict.fromkeys(regions))
        if not self.names:
            raise ValueError("at least one region")
        self._down: set[str] = set()
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str, bool], None]] = []

    def is_up(self, region: str) -> bool:
        with self._lock:
            return region not in self._down

    def down(self) -> set[str]:
        with self._lock:
            return set(self._down)

    def on_change(self, listener: Callable[[str, bool], None]) -> None:
        """Call ``listener(region, up)`` whenever a region goes down or comes back."""
        self._listeners.append(listener)

    def kill(self, region: str) -> None:
        self._set(region, up=False)

    def revive(self, region: str) -> None:
        self._set(region, up=True)

    def _set(self, region: str, up: bool) -> None:
        if region not in self.names:
            raise ValueError(f"{region!r} is not one of the local regions {list(self.names)}")
        with self._lock:
            changed = (region in self._down) == up
            if up:
                self._down.discard(region)
            else:
                self._down.add(region)
        if changed:
            for listener in list(self._listeners):
                listener(region, up)

    def guard(self, client: Any, region: str | None = None) -> Any:
        """Make ``client`` (a boto3 client of ``region``, its own by default) fail with
        ``EndpointConnectionError`` while that region is down. Returns the client."""
        region = region or client.meta.region_name
        endpoint = client.meta.endpoint_url

        def refuse(request: Any = None, **_: Any) -> None:
            if not self.is_up(region):
                raise EndpointConnectionError(endpoint_url=endpoint)

        # before-send runs after signing, just before the request would leave; moto answers
        # there too (its handler is registered with the client), so ours goes first.
        client.meta.events.register_first("before-send", refuse)
        return client
