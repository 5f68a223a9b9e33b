"""Prometheus metrics of one worker, and the per-worker status listener.

Nothing here runs per message. The worker already keeps plain integer counters (``ServerStats``,
``Hub.deliveries``/``publications``, ``BrokerStats``); :class:`WorkerCollector` reads them when
``/metrics`` is scraped. The one metric observed as it happens is the broker publish latency
histogram (one observation per publish, never per delivery).

Each worker has its own registry and answers ``/metrics`` for itself only: on the shared port,
whichever worker accepts the scrape answers it. To reach every worker of a cluster, give
``--metrics-port P``: worker *i* then also listens on ``P + i`` (bound once by the supervisor, so a
restarted worker keeps its port) and answers ``/metrics``, ``/health`` and ``/ready`` there. Every
series carries a ``worker`` label. Prometheus's multiprocess mode is not used: it cannot aggregate
values that live in plain integers without writing them to shared files per message.
"""

from __future__ import annotations

import os
import socket as stdsocket
from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import anyio
import trio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from ._loop import current
from ._transport.exchange import send_all
from ._transport.listen import accept_loop

if TYPE_CHECKING:
    from ._server import Server

__all__ = ["WorkerCollector", "WorkerMetrics", "serve_status"]


#: Buckets of ``hubbub_broker_publish_seconds``: 50 µs to 5 s.
PUBLISH_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


class PublishLatency:
    """A histogram of broker publish times kept as plain integers (a bisect and an add per publish)."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(PUBLISH_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(PUBLISH_BUCKETS, seconds)] += 1
        self.total += seconds

    def family(self, worker: str) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            "hubbub_broker_publish_seconds",
            "Time from a publish call to the broker accepting it (successful publishes).",
            labels=["worker"],
        )
        buckets: list[tuple[str, float]] = []
        cumulative = 0
        for bound, count in zip(PUBLISH_BUCKETS, self.counts, strict=False):
            cumulative += count
            buckets.append((str(bound), cumulative))
        buckets.append(("+Inf", cumulative + self.counts[-1]))
        family.add_metric([worker], buckets, sum_value=self.total)
        return family


class WorkerCollector(Collector):
    """Reads a :class:`Server`'s counters at scrape time."""

    def __init__(self, server: Server, worker: str, latency: PublishLatency) -> None:
        self._server = server
        self._worker = worker
        self._latency = latency

    def _gauge(self, name: str, doc: str, value: float) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, doc, labels=["worker"])
        family.add_metric([self._worker], value)
        return family

    def _counter(self, name: str, doc: str, value: float) -> CounterMetricFamily:
        family = CounterMetricFamily(name, doc, labels=["worker"])
        family.add_metric([self._worker], value)
        return family

    def collect(self) -> Iterator[Metric]:
        server = self._server
        stats = server.stats
        hub = server.hub if server.running else None
        deliveries = hub.deliveries if hub is not None else 0
        publications = hub.publications if hub is not None else 0
        channels = hub.channel_count if hub is not None else 0
        broker = server.broker
        broker_stats: Any = getattr(broker, "stats", None)

        info = GaugeMetricFamily("hubbub_worker", "This worker (always 1).", labels=["worker", "pid"])
        info.add_metric([self._worker, str(os.getpid())], 1)
        yield info
        yield self._gauge("hubbub_connections", "Open WebSocket connections.", server.connection_count)
        yield self._counter(
            "hubbub_connections_accepted",
            "TCP connections accepted (HTTP and WebSocket).",
            stats.connections_total,
        )
        yield self._gauge(
            "hubbub_subscriptions",
            "Channel subscriptions of open sockets (socket x channel).",
            hub.subscription_count if hub is not None else 0,
        )
        yield self._gauge("hubbub_channels", "Channels with at least one local subscriber.", channels)
        yield self._counter(
            "hubbub_messages_in", "WebSocket messages received from clients.", stats.messages_in
        )
        yield self._counter(
            "hubbub_messages_out",
            "Messages sent to clients (responses, events and channel deliveries; no heartbeats).",
            stats.messages_out + deliveries,
        )
        yield self._counter("hubbub_deliveries", "Channel messages handed to local subscribers.", deliveries)
        yield self._counter(
            "hubbub_publications",
            "Broker messages that had local subscribers (fanned out once each).",
            publications,
        )
        yield self._counter(
            "hubbub_slow_consumer_disconnects",
            "Sockets closed with 4010 because their outbound backlog passed outbound_limit.",
            stats.slow_consumer_disconnects,
        )
        yield self._counter(
            "hubbub_rate_limited_disconnects",
            "Sockets closed with 4012 because they sent more messages than message_rate/message_burst allow.",
            stats.rate_limited_disconnects,
        )
        yield self._gauge(
            "hubbub_broker_ready", "1 when the broker is connected and resubscribed.", broker.ready
        )
        yield self._gauge(
            "hubbub_broker_subscriptions",
            "Channels this worker is subscribed to at the broker.",
            len(broker.subscriptions()),
        )
        errors = CounterMetricFamily(
            "hubbub_broker_errors",
            "Broker errors: publish = publishes refused to clients or the app (BrokerError); "
            "connection = broker sessions lost or failed to open; decode = undecodable messages; "
            "deliver = exceptions while fanning out.",
            labels=["worker", "kind"],
        )
        errors.add_metric([self._worker, "publish"], server.publisher.failures)
        if broker_stats is not None:
            errors.add_metric([self._worker, "connection"], broker_stats.session_failures)
            errors.add_metric([self._worker, "decode"], broker_stats.decode_errors)
            errors.add_metric([self._worker, "deliver"], broker_stats.deliver_errors)
        yield errors
        yield self._latency.family(self._worker)
        yield from self._history()
        yield from self._api()

    def _api(self) -> Iterator[Metric]:
        api = self._server.api
        if api is None:
            return
        calls = CounterMetricFamily(
            "hubbub_api_calls",
            "Calls of the HTTP server API by method and result (ok, or the kind of error).",
            labels=["worker", "method", "result"],
        )
        for (method, result), count in sorted(api.service.calls.items()):
            calls.add_metric([self._worker, method, result], count)
        yield calls

    def _history(self) -> Iterator[Metric]:
        history = self._server.history
        if history is None:
            return
        stats = history.streams.stats
        yield self._counter(
            "hubbub_history_healed",
            "Publications on history channels the broker did not deliver, filled in from the history.",
            stats.healed,
        )
        yield self._counter(
            "hubbub_history_lost",
            "Publications missing from a gap that the history no longer held.",
            stats.lost,
        )
        yield self._counter("hubbub_history_reads", "History reads made by this worker.", stats.reads)
        recoveries = CounterMetricFamily(
            "hubbub_history_recoveries",
            "Subscriptions with a position, by result: recovered, or why not.",
            labels=["worker", "result"],
        )
        for result, count in sorted(stats.recoveries.items()):
            recoveries.add_metric([self._worker, result.replace(" ", "_")], count)
        yield recoveries


class WorkerMetrics:
    """The registry of one worker: its collector, the publish histogram and process metrics."""

    def __init__(self, server: Server) -> None:
        worker = str(server.worker_id if server.worker_id is not None else 0)
        self.registry = CollectorRegistry(auto_describe=False)
        latency = PublishLatency()
        self.registry.register(WorkerCollector(server, worker, latency))
        ProcessCollector(namespace="hubbub", registry=self.registry)
        server.metrics = self.render
        server.publisher.observer = latency.observe

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of this worker."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


_MAX_REQUEST = 8192


async def serve_status(listener: stdsocket.socket, server: Server, timeout: float = 5.0) -> None:
    """Answer ``GET /metrics``, ``/health`` and ``/ready`` on ``listener`` (one request per connection)."""

    async def answer(raw: stdsocket.socket, address: object) -> None:
        await _answer(raw, server, timeout)

    async with anyio.create_task_group() as nursery:
        await accept_loop(listener, answer, nursery)


async def _answer(raw: stdsocket.socket, server: Server, timeout: float) -> None:
    loop = current()
    try:
        with anyio.move_on_after(timeout):
            data = b""
            while b"\r\n\r\n" not in data and len(data) < _MAX_REQUEST:
                try:
                    chunk = raw.recv(4096)
                except BlockingIOError:
                    await loop.wait_readable(raw)
                    continue
                if not chunk:
                    return
                data += chunk
            request_line = data.split(b"\r\n", 1)[0].decode("latin-1").split()
            path = request_line[1].split("?", 1)[0] if len(request_line) >= 2 else ""
            response = server.status_response(path)
            if response is None:
                body = b"Not Found"
                head = (
                    "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                payload = head + body
            else:
                payload = response.serialize()
            await send_all(raw, payload, timeout)
    except (OSError, trio.ClosedResourceError):
        pass
    finally:
        raw.close()
