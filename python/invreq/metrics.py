"""Prometheus metrics (``--metrics-port``, off by default), with ``prometheus-client``.

Each service instance has its own ``CollectorRegistry`` (no module-level state: tests run
several servers in one process). What is measured, and where:

- requests and errors by method and code, and request latency per method: the dispatcher;
- signer latency: the service around the signer call; store commit latency and group
  sizes: the store, through ``observe_commit``;
- open connections: the unix-socket server and HTTP;
- records by state: asked of the store at scrape time, so several instances on one
  database report the same truth.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from invreq.errors import listen_error

__all__ = ["Metrics", "metrics_site"]

log = logging.getLogger("invreq.metrics")

_LATENCY = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30)
_GROUPS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "invreq_requests",
            "RPC requests answered, by method and result code ('ok' or the JSON-RPC error code)",
            ["method", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "invreq_request_seconds",
            "Time to answer an RPC request",
            ["method"],
            buckets=_LATENCY,
            registry=r,
        )
        self.signer = Histogram(
            "invreq_signer_seconds",
            "Time the signer took per signature",
            buckets=_LATENCY,
            registry=r,
        )
        self.commit = Histogram(
            "invreq_store_commit_seconds",
            "Time per store commit (one group of writes)",
            buckets=_LATENCY,
            registry=r,
        )
        self.group = Histogram(
            "invreq_store_group_size", "Writes per store commit", buckets=_GROUPS, registry=r
        )
        self.connections = Gauge(
            "invreq_open_connections", "Open client connections", ["transport"], registry=r
        )
        self.records = Gauge(
            "invreq_records", "Stored invoice_requests by state", ["state"], registry=r
        )

    def observe_commit(self, seconds: float, writes: int) -> None:
        self.commit.observe(seconds)
        self.group.observe(writes)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))


async def metrics_site(
    metrics: Metrics,
    host: str,
    port: int,
    count_by_state: Callable[[], Awaitable[dict[str, int]]],
) -> AsyncIterator[None]:
    """Serve ``GET /metrics`` on its own port while the context is open."""

    async def handle(request: web.Request) -> web.Response:
        try:
            for state, n in (await count_by_state()).items():
                metrics.records.labels(state).set(n)
        except Exception as e:  # a scrape must not fail because the store is busy
            log.warning("records by state unavailable: %s", e)
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise listen_error("--metrics-port", f"{host}:{port}", e) from None
    log.info("metrics on http://%s:%d/metrics", host, port)
    try:
        yield
    finally:
        await asyncio.shield(runner.cleanup())
