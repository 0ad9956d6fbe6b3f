"""Prometheus metrics: requests and latency (middleware), and the batcher's figures (collector)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.store.records import oldest_pending_at, pending_count

if TYPE_CHECKING:
    from api.service import Service


class Metrics:
    """One registry per app instance (so tests can build many apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "careledger_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "careledger_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "careledger_batch_size_records",
            "Records per anchored batch",
            buckets=(1, 8, 64, 256, 1024, 4096, 16384, 65536),
            registry=self.registry,
        )

    def watch(self, service: Service) -> None:
        """Report the service's batcher and store figures at each scrape."""
        self.registry.register(ServiceCollector(service))


class RequestMetrics:
    """ASGI middleware counting requests and timing them by route template (not raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.latency.labels(scope["method"], template).observe(time.perf_counter() - start)


class ServiceCollector(Collector):
    """Reads the batcher's and the store's figures at scrape time."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        stats = self.service.batcher.stats
        conn = self.service.db.conn
        pending, oldest = pending_count(conn), oldest_pending_at(conn)
        yield GaugeMetricFamily("careledger_pending_records", "Acknowledged records not yet in a batch", value=pending)
        yield GaugeMetricFamily(
            "careledger_oldest_pending_seconds",
            "Age of the oldest pending record",
            value=time.time() - oldest if oldest else 0.0,
        )
        yield GaugeMetricFamily(
            "careledger_anchoring_lag_seconds",
            "From acknowledgement of a batch's oldest record to its anchoring (last batch)",
            value=stats.last_anchor_lag,
        )
        yield CounterMetricFamily(
            "careledger_batches_anchored", "Batches anchored by this process", value=stats.batches_anchored
        )
        yield CounterMetricFamily(
            "careledger_records_anchored", "Records anchored by this process", value=stats.records_anchored
        )
        yield CounterMetricFamily(
            "careledger_gas_used", "Gas used by anchoring transactions of this process", value=stats.gas_used
        )
        yield GaugeMetricFamily(
            "careledger_chain_available",
            "1 if the batcher reached the chain last time",
            value=1.0 if stats.chain_available else 0.0,
        )
