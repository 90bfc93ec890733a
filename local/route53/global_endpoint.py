"""The global names of a multi-region local stack: what the deployed Route 53 records do.

The program deploys, per region, a latency record for ``api.<zone>`` and ``ws.<zone>`` and a
health check on the region's ``/v1/health`` (components/routing.py, with the interval and
threshold of components/failover.py). Locally there is no DNS: ``GlobalEndpoint`` is a reverse
proxy that, for every request and WebSocket connection, picks the region those records would
answer with:

- the client's location is stated, in the ``x-client-location`` header (an AWS region: where
  Route 53's latency data would place the client's resolver), the first region by default;
- the region is the nearest healthy one by the shipped latency table
  (``components.failover.nearest_healthy``);
- each region's health is Route 53's: a probe of ``HEALTH_PATH`` every interval, the status
  changing after ``threshold`` consecutive results the other way. The clock may run
  ``scale`` times faster than Route 53's (the drill uses it), with the same threshold.

What it does not emulate: DNS caching (a deployed client holds an answer for the record's
TTL; here every request is routed afresh, so local failover is faster by up to one TTL) and
Route 53's many checkers (one here). A request whose region fails on the way ends without an
answer, as a connection to a dead region does. ``GET /_route53?location=<region>`` says which
region a client there is sent to and what every health check says.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from components.failover import (
    HEALTH_CHECK_FAILURE_THRESHOLD,
    HEALTH_CHECK_INTERVAL_SECONDS,
    HEALTH_PATH,
    nearest_healthy,
)

__all__ = ["LOCATION_HEADER", "GlobalEndpoint", "HealthChecks", "Transition"]

LOCATION_HEADER = "x-client-location"
SERVED_BY_HEADER = "x-served-by-region"
PROBE_TIMEOUT_SECONDS = 2.0
"""A probe's answer must come in time; Route 53 waits for the response status "within two
seconds after connecting"
(https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-determining-health-of-endpoints.html)."""
_HOP_HEADERS = {"host", "connection", "keep-alive", "transfer-encoding", "content-length", LOCATION_HEADER}


@dataclass(frozen=True)
class Transition:
    at: float
    """time.time() of the probe that changed the status."""
    region: str
    healthy: bool


class HealthChecks:
    """One health check per region, on a clock ``scale`` times faster than Route 53's."""

    def __init__(
        self,
        targets: Mapping[str, str],
        scale: float = 1.0,
        threshold: int = HEALTH_CHECK_FAILURE_THRESHOLD,
        log: Callable[[dict[str, Any]], None] = lambda entry: None,
        probe: Callable[[str], bool] | None = None,
    ) -> None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.targets = dict(targets)
        self.interval = HEALTH_CHECK_INTERVAL_SECONDS / scale
        self.threshold = threshold
        self.log = log
        self._probe = probe or _probe
        self.healthy = dict.fromkeys(self.targets, True)
        self._streak = dict.fromkeys(self.targets, 0)
        self.transitions: list[Transition] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> HealthChecks:
        self._thread = threading.Thread(target=self._run, name="local-route53-health", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check_all()

    def check_all(self) -> None:
        """Probe every region once and apply Route 53's threshold."""
        results: dict[str, bool] = {}
        threads = [
            threading.Thread(target=lambda r=r, u=u: results.__setitem__(r, self._probe(u + HEALTH_PATH)))
            for r, u in self.targets.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for region, ok in results.items():
            self.record(region, ok)

    def record(self, region: str, ok: bool) -> None:
        with self._lock:
            if ok == self.healthy[region]:
                self._streak[region] = 0
                return
            self._streak[region] += 1
            if self._streak[region] < self.threshold:
                return
            self._streak[region] = 0
            self.healthy[region] = ok
            transition = Transition(time.time(), region, ok)
            self.transitions.append(transition)
        self.log({"service": "local-route53", "message": "health check changed", "region": region, "healthy": ok})

    def healthy_regions(self) -> set[str]:
        with self._lock:
            return {r for r, ok in self.healthy.items() if ok}


def _probe(url: str) -> bool:
    """A Route 53 HTTP health check: healthy on a 2xx or 3xx answer in time."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_SECONDS) as response:  # noqa: S310 - loopback
            return 200 <= response.status < 400
    except (urllib.error.URLError, OSError, ValueError):
        return False


class _Listener:
    def __init__(self, scheme: str, host: str, port: int) -> None:
        self.url = f"{scheme}://{host}:{port}"


class GlobalEndpoint:
    """A reverse proxy for REST and WebSocket that routes like the deployed latency records."""

    def __init__(
        self,
        regions: Mapping[str, tuple[str, str]],
        loop: Any,
        host: str = "127.0.0.1",
        rest_port: int = 0,
        ws_port: int = 0,
        scale: float = 1.0,
        log: Callable[[dict[str, Any]], None] = lambda entry: None,
    ) -> None:
        """``regions``: each region's REST and WebSocket base URLs; the first region is where
        a client that states no location is."""
        self.regions = dict(regions)
        self.order = list(regions)
        self.loop = loop
        self.host = host
        self.log = log
        self.checks = HealthChecks({r: urls[0] for r, urls in regions.items()}, scale, log=log)
        self.interval = self.checks.interval
        self.threshold = self.checks.threshold
        self.deployed_interval = HEALTH_CHECK_INTERVAL_SECONDS
        self._ports = (rest_port, ws_port)
        self._runners: list[Any] = []

    def resolve(self, location: str | None) -> str:
        """The region a client in ``location`` is sent to now."""
        return nearest_healthy(location or self.order[0], self.order, self.checks.healthy_regions())

    def start(self) -> GlobalEndpoint:
        from local.apigateway.gateway import _listen

        self._session = self.loop.run(_client_session())
        rest_runner, rest_port = self.loop.run(_listen(self._rest_app(), self.host, self._ports[0]))
        self._runners.append(rest_runner)
        ws_runner, ws_port = self.loop.run(_listen(self._ws_app(), self.host, self._ports[1]))
        self._runners.append(ws_runner)
        self.rest = _Listener("http", self.host, rest_port)
        self.websocket = _Listener("ws", self.host, ws_port)
        self.checks.start()
        return self

    def stop(self) -> None:
        self.checks.stop()

        async def close() -> None:
            for runner in self._runners:
                await runner.cleanup()
            await self._session.close()

        self.loop.run(close())

    def _location(self, headers: Mapping[str, str]) -> str | None:
        location = headers.get(LOCATION_HEADER)
        return location.strip() if location else None

    def _rest_app(self) -> Any:
        from aiohttp import ClientError, web

        async def route53(request: web.Request) -> web.Response:
            location = request.query.get("location") or self.order[0]
            try:
                region = self.resolve(location)
            except ValueError as error:
                return web.json_response({"error": {"code": "invalid_request", "message": str(error)}}, status=400)
            return web.json_response(
                {"location": location, "region": region, "healthy": dict(self.checks.healthy)},
                headers={"cache-control": "no-store"},
            )

        async def forward(request: web.Request) -> web.StreamResponse:
            try:
                region = self.resolve(self._location(request.headers))
            except ValueError as error:
                return web.json_response({"error": {"code": "invalid_request", "message": str(error)}}, status=400)
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
            body = await request.read()
            try:
                async with self._session.request(
                    request.method, self.regions[region][0] + request.path_qs, headers=headers, data=body
                ) as answer:
                    payload = await answer.read()
                    out = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_HEADERS}
                    out[SERVED_BY_HEADER] = region
                    return web.Response(status=answer.status, headers=out, body=payload)
            except (TimeoutError, ClientError, OSError):
                # The region failed on the way: its client's connection fails too.
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=502)  # never sent

        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_get("/_route53", route53)
        app.router.add_route("*", "/{tail:.*}", forward)
        return app

    def _ws_app(self) -> Any:
        from aiohttp import ClientError, WSMsgType, web

        async def session(request: web.Request) -> web.StreamResponse:
            try:
                region = self.resolve(self._location(request.headers))
            except ValueError:
                return web.Response(status=400, text="x-client-location must be an AWS region\n")
            url = self.regions[region][1] + request.path_qs
            try:
                upstream = await self._session.ws_connect(url, max_msg_size=0)
            except ClientError as error:
                status = getattr(error, "status", None)
                if status:  # the region answered (401: no valid token): pass it on
                    return web.Response(status=status)
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=502)  # never sent
            client = web.WebSocketResponse(max_msg_size=0)
            client.headers[SERVED_BY_HEADER] = region
            await client.prepare(request)

            async def down() -> None:
                async for message in upstream:
                    if message.type == WSMsgType.TEXT:
                        await client.send_str(message.data)
                    elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                        break
                # The region's side ended: end the client's abnormally unless it closed cleanly.
                if upstream.close_code in (None, 1006) and request.transport is not None:
                    request.transport.abort()
                else:
                    await client.close()

            pump = asyncio.ensure_future(down())
            try:
                async for message in client:
                    if message.type == WSMsgType.TEXT:
                        await upstream.send_str(message.data)
            finally:
                pump.cancel()
                await upstream.close()
            return client

        app = web.Application()
        app.router.add_get("/", session)
        return app


async def _client_session() -> Any:
    from aiohttp import ClientSession, ClientTimeout, TCPConnector

    # No pooled connection may outlive a region going down: one connection per request.
    return ClientSession(timeout=ClientTimeout(total=60), connector=TCPConnector(force_close=True, limit=0))
