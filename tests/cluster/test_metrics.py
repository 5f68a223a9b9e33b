"""``/metrics``: Prometheus text from real worker processes after real traffic."""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from hubbub.client import connect

from ..conftest import RedisProcess, stalled_subscriber
from .conftest import ClusterFactory, ahttp_get, client_on_worker, poll

SAMPLES = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> SAMPLES:
    samples: SAMPLES = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: SAMPLES, name: str, **labels: str) -> float:
    """The sum of ``name`` over the samples whose labels include ``labels``."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls)]
    assert found, f"no sample {name} {labels}"
    return sum(found)


async def scrape(base: str) -> SAMPLES:
    status, body = await ahttp_get(base + "/metrics")
    assert status == 200, body
    return parse(body)


@pytest.mark.trio
async def test_single_worker_metrics_after_traffic(hubbub_cluster: ClusterFactory) -> None:
    cluster = hubbub_cluster("--metrics-port", "0", workers=1)
    channel = f"m-{uuid.uuid4().hex[:8]}"
    async with (
        connect(cluster.url) as a,
        connect(cluster.url) as b,
        a.subscribe(channel) as on_a,
        b.subscribe(channel) as on_b,
    ):
        await on_a.wait_subscribed(5)
        await on_b.wait_subscribed(5)
        for i in range(10):
            await a.publish(channel, i)
        with trio.fail_after(5):
            assert [await on_a.receive() for _ in range(10)] == list(range(10))
            assert [await on_b.receive() for _ in range(10)] == list(range(10))
        samples = await scrape(cluster.status[0])

    assert value(samples, "hubbub_connections") == 2
    assert value(samples, "hubbub_subscriptions") == 2
    assert value(samples, "hubbub_channels") == 1
    assert value(samples, "hubbub_deliveries_total") == 20
    assert value(samples, "hubbub_publications_total") == 10
    # in: 2 handshakes + 2 subscribes + 10 publishes; out: at least their responses + 20 deliveries
    assert value(samples, "hubbub_messages_in_total") >= 14
    assert value(samples, "hubbub_messages_out_total") >= 14 + 20
    assert value(samples, "hubbub_connections_accepted_total") >= 2
    assert value(samples, "hubbub_broker_publish_seconds_count") == 10
    assert 0 < value(samples, "hubbub_broker_publish_seconds_sum") < 10
    assert value(samples, "hubbub_broker_errors_total", kind="publish") == 0
    assert value(samples, "hubbub_slow_consumer_disconnects_total") == 0
    assert value(samples, "hubbub_broker_ready") == 1
    assert value(samples, "hubbub_worker", worker="0") == 1
    assert value(samples, "hubbub_process_resident_memory_bytes") > 0
    assert all(name.startswith("hubbub_") for name, _ in samples)


@pytest.mark.trio
async def test_slow_consumer_disconnects_are_counted(hubbub_cluster: ClusterFactory) -> None:
    cluster = hubbub_cluster("--outbound-limit", "65536", "--public-metrics", "true", workers=1)
    channel = f"slow-{uuid.uuid4().hex[:8]}"
    slow = await trio.to_thread.run_sync(stalled_subscriber, cluster.url, channel)
    try:
        async with connect(cluster.url) as publisher:
            await poll(
                lambda: _subscribed(cluster.http), "the slow reader's subscription", timeout=5, interval=0.02
            )
            blob = "x" * 60000

            async def overflowed() -> bool:
                for _ in range(20):
                    await publisher.publish(channel, blob)
                samples = await scrape(cluster.http)
                return value(samples, "hubbub_slow_consumer_disconnects_total") == 1

            await poll(overflowed, "a slow-consumer disconnect", timeout=20)
    finally:
        slow.close()


async def _subscribed(base: str) -> bool:
    return value(await scrape(base), "hubbub_subscriptions") == 1


@pytest.mark.redis
@pytest.mark.trio
async def test_every_worker_of_a_cluster_has_its_metrics_port(
    hubbub_cluster: ClusterFactory, redis_server: RedisProcess, prefix: str
) -> None:
    cluster = hubbub_cluster("--broker", redis_server.url, "--broker-prefix", prefix, "--metrics-port", "0")
    assert sorted(cluster.status) == [0, 1]
    channel = f"c-{uuid.uuid4().hex[:8]}"
    async with (
        client_on_worker(cluster.url) as (subscriber, sub_pid),
        client_on_worker(cluster.url, avoid={sub_pid}) as (publisher, _),
        subscriber.subscribe(channel) as messages,
    ):
        await messages.wait_subscribed(5)
        for i in range(25):
            await publisher.publish(channel, i)
        with trio.fail_after(5):
            assert [await messages.receive() for _ in range(25)] == list(range(25))
        per_worker = {worker: await scrape(base) for worker, base in cluster.status.items()}

    by_pid: dict[int, SAMPLES] = {}
    for worker, samples in per_worker.items():
        pids = [dict(labels)["pid"] for (name, labels) in samples if name == "hubbub_worker"]
        assert len(pids) == 1
        assert value(samples, "hubbub_worker", worker=str(worker)) == 1
        by_pid[int(pids[0])] = samples
    assert sub_pid in by_pid
    sub = by_pid[sub_pid]
    pub = next(samples for pid, samples in by_pid.items() if pid != sub_pid)
    assert value(sub, "hubbub_deliveries_total") == 25
    assert value(sub, "hubbub_subscriptions") == 1
    assert value(sub, "hubbub_broker_subscriptions") == 1
    assert value(pub, "hubbub_broker_publish_seconds_count") == 25
    assert value(pub, "hubbub_deliveries_total") == 0
    totals: defaultdict[str, float] = defaultdict(float)
    for samples in per_worker.values():
        for name in ("hubbub_connections", "hubbub_broker_ready"):
            totals[name] += value(samples, name)
    assert totals == {"hubbub_connections": 2, "hubbub_broker_ready": 2}
