"""``hubbub run --workers N``: real supervisor and worker processes, real redis-server, real clients.

* The official JS client on one worker receives what a Python client publishes on another, with
  both codecs, through Redis (and the figures of that path are printed: ``pytest -s``).
* A worker killed with SIGKILL is logged and restarted; its clients reconnect to the cluster.
* SIGTERM drains: clients see 4011, the supervisor exits 0 within the deadline.
* Redis killed and restarted mid-stream: workers stay up, publishes get a BrokerError, ``/ready``
  says 503 during the outage and 200 after, and subscriptions resume.

Every test runs with workers on trio and on ``--loop asyncio``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import time
import uuid
from typing import Any

import pytest
import trio

from hubbub.client import Connected, Disconnected, RemoteError, connect

from ..conftest import INTEROP, RedisProcess, raw_peer, reap
from .conftest import ClusterFactory, ahttp_get, client_on_worker, poll

MESSAGES = 1000


@pytest.fixture(params=["trio", "asyncio"])
def hubbub_cluster(hubbub_cluster: ClusterFactory, request: pytest.FixtureRequest) -> ClusterFactory:
    """The conftest's factory, with the workers on ``--loop trio`` or ``--loop asyncio``."""
    loop = str(request.param)

    def start(*args: str, **options: Any) -> Any:
        return hubbub_cluster(*args, "--loop", loop, **options)

    return start


def _channel() -> str:
    return f"room-{uuid.uuid4().hex[:8]}"


async def _read_json_lines(stream: trio.abc.ReceiveStream, out: trio.MemorySendChannel[Any]) -> None:
    buffer = b""
    async with out:
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    await out.send(json.loads(line))


# -- cross-worker delivery -------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.interop
@pytest.mark.trio
@pytest.mark.parametrize("codec", ["json", "minbin"])
async def test_official_client_on_one_worker_receives_python_publishes_from_another(
    hubbub_cluster: ClusterFactory, redis_server: RedisProcess, prefix: str, codec: str
) -> None:
    if shutil.which("node") is None or not (INTEROP / "node_modules").is_dir():
        pytest.fail("node and tests/interop/node_modules are required (run `make install`)")
    cluster = hubbub_cluster("--broker", redis_server.url, "--broker-prefix", prefix, "--codec", codec)
    channel = _channel()
    node = await trio.lowlevel.open_process(
        [
            *("node", "cross_worker.js", "--url", cluster.url, "--codec", codec, "--channel", channel),
            *("--count", str(MESSAGES), "--timeout", "40000"),
        ],
        cwd=INTEROP,
        stdout=subprocess.PIPE,
    )
    try:
        assert node.stdout is not None
        send, receive = trio.open_memory_channel[Any](10)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_read_json_lines, node.stdout, send)
            with trio.fail_after(20):
                ready = await receive.receive()
            assert ready["event"] == "ready", ready
            subscriber_pid = ready["pid"]
            async with client_on_worker(cluster.url, codec=codec, avoid={subscriber_pid}) as (client, pid):
                assert pid != subscriber_pid
                started = time.perf_counter()
                for i in range(MESSAGES):
                    await client.publish(channel, {"i": i, "t": time.time() * 1000})
                publish_seconds = time.perf_counter() - started
                with trio.fail_after(30):
                    done = await receive.receive()
            nursery.cancel_scope.cancel()
    finally:
        await reap(node)
    assert done["event"] == "done", done
    assert done["order"] == list(range(MESSAGES))
    latencies = sorted(done["latencies_ms"])
    median = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"\ncross-worker ({codec}): {MESSAGES} acknowledged publishes from worker pid {pid} to the official "
        f"client on worker pid {subscriber_pid} in {publish_seconds:.2f}s "
        f"({MESSAGES / publish_seconds:.0f}/s); latency median {median:.2f} ms, p99 {p99:.2f} ms, "
        f"max {latencies[-1]:.2f} ms"
    )
    assert median < 250


# -- a worker dies ---------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.trio
async def test_worker_killed_with_sigkill_is_restarted_and_its_clients_reconnect(
    hubbub_cluster: ClusterFactory, redis_server: RedisProcess, prefix: str
) -> None:
    cluster = hubbub_cluster(
        "--broker", redis_server.url, "--broker-prefix", prefix, "--metrics-port", "0", "--log-level", "INFO"
    )
    channel = _channel()
    async with (
        client_on_worker(cluster.url) as (victim, doomed_pid),
        client_on_worker(cluster.url, avoid={doomed_pid}) as (other, other_pid),
        victim.subscribe(channel) as messages,
        victim.events() as events,
    ):
        await messages.wait_subscribed(5)
        await other.publish(channel, "before")
        with trio.fail_after(5):
            assert await messages.receive() == "before"

        since = len(cluster.lines)
        os.kill(doomed_pid, signal.SIGKILL)
        death = await cluster.wait_line(
            rf"worker (\d+) \(pid {doomed_pid}\) was killed by SIGKILL after [\d.]+s; restarting in",
            since=since,
        )
        slot = int(death.group(1))
        ready = await cluster.wait_line(rf"worker {slot} ready \(pid (\d+)\)", since=since)
        new_pid = int(ready.group(1))
        assert new_pid not in (doomed_pid, other_pid)

        # The victim saw the connection drop and reconnected to the cluster.
        with trio.fail_after(15):
            async for event in events:
                if isinstance(event, Disconnected):
                    assert event.code in (1006, 1011), event
                if isinstance(event, Connected):
                    break
        now_pid = (await victim.invoke("worker"))["pid"]
        assert now_pid in (other_pid, new_pid)

        # Its subscription came back with it, and messages cross workers again.
        async def delivered() -> bool:
            await other.publish(channel, "after")
            with trio.move_on_after(0.5):
                while True:
                    if await messages.receive() == "after":
                        return True
            return False

        await poll(delivered, "delivery after the restart", timeout=15)

    # The restarted worker answers on its slot's status port.
    status, body = await ahttp_get(cluster.status[slot] + "/health")
    assert status == 200
    assert json.loads(body)["pid"] == new_pid
    assert json.loads(body)["worker"] == slot
    assert cluster.proc.poll() is None


# -- draining --------------------------------------------------------------------------------


def _stubborn_peer(url: str) -> socket.socket:
    """A WebSocket client that completes the SocketCluster handshake and then never reads again."""
    return raw_peer(url, [{"event": "#handshake", "data": {}, "cid": 1}])


@pytest.mark.trio
async def test_sigterm_drains_with_4011_and_exits_0_within_the_deadline(
    hubbub_cluster: ClusterFactory,
) -> None:
    drain_timeout = 4.0
    cluster = hubbub_cluster(
        "--drain-timeout", str(drain_timeout), "--close-timeout", "1", "--log-level", "INFO"
    )
    codes: list[int] = []
    pids: set[int] = set()

    async def connected_client(done: trio.Event, task_status: trio.TaskStatus[None]) -> None:
        async with connect(cluster.url, auto_reconnect=False) as client, client.events() as events:
            pids.add((await client.invoke("worker"))["pid"])
            task_status.started()
            async for event in events:
                if isinstance(event, Disconnected):
                    codes.append(event.code)
                    break
        done.set()

    stubborn = await trio.to_thread.run_sync(_stubborn_peer, cluster.url)
    try:
        dones = [trio.Event() for _ in range(6)]
        async with trio.open_nursery() as nursery:
            for done in dones:
                await nursery.start(connected_client, done)
            started = time.monotonic()
            cluster.proc.send_signal(signal.SIGTERM)
            returncode = await trio.to_thread.run_sync(cluster.proc.wait, drain_timeout + 10)
            elapsed = time.monotonic() - started
            with trio.fail_after(5):
                for done in dones:
                    await done.wait()
    finally:
        stubborn.close()
    assert returncode == 0, cluster.output()
    assert elapsed < drain_timeout + 1, f"took {elapsed:.1f}s\n{cluster.output()}"
    assert codes == [4011] * len(dones)
    assert cluster.matches(r"SIGTERM: draining 2 workers")
    assert not cluster.matches(r"restarting in|did not drain"), cluster.output()


@pytest.mark.trio
async def test_one_worker_keeps_the_single_process_path(hubbub_cluster: ClusterFactory) -> None:
    cluster = hubbub_cluster("--metrics-port", "0", workers=1)
    status, body = await ahttp_get(cluster.status[0] + "/health")
    assert status == 200
    health = json.loads(body)
    assert health["pid"] == cluster.proc.pid  # no supervisor: the process we started serves
    assert health["worker"] is None
    cluster.proc.send_signal(signal.SIGTERM)
    assert await trio.to_thread.run_sync(cluster.proc.wait, 10) == 0


# -- Redis goes away -------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.trio
async def test_redis_outage_errors_publishes_ready_tells_the_truth_and_subscriptions_resume(
    hubbub_cluster: ClusterFactory, own_redis_server: RedisProcess, prefix: str
) -> None:
    redis = own_redis_server
    cluster = hubbub_cluster("--broker", redis.url, "--broker-prefix", prefix, "--metrics-port", "0")
    assert sorted(cluster.status) == [0, 1]
    channel = _channel()

    async def ready_statuses() -> list[int]:
        return [(await ahttp_get(base + "/ready"))[0] for base in cluster.status.values()]

    async def all_ready(expected: int) -> bool:
        return await ready_statuses() == [expected, expected]

    async def worker_pids() -> set[int]:
        return {json.loads((await ahttp_get(base + "/health"))[1])["pid"] for base in cluster.status.values()}

    pids_before = await worker_pids()
    await poll(lambda: all_ready(200), "/ready 200 on both workers")
    async with (
        client_on_worker(cluster.url) as (subscriber, sub_pid),
        client_on_worker(cluster.url, avoid={sub_pid}) as (publisher, _),
        subscriber.subscribe(channel) as messages,
    ):
        await messages.wait_subscribed(5)

        async def received(value: Any) -> bool:
            await publisher.publish(channel, value)
            with trio.move_on_after(0.5):
                while True:
                    if await messages.receive() == value:
                        return True
            return False

        await poll(lambda: received("before"), "delivery before the outage")

        redis.kill()
        await poll(lambda: all_ready(503), "/ready 503 on both workers during the outage")
        # A publish now fails promptly with the SocketCluster error, it does not hang.
        started = time.monotonic()
        with pytest.raises(RemoteError) as caught:
            with trio.fail_after(6):
                await publisher.publish(channel, "during")
        assert caught.value.name == "BrokerError"
        assert "Failed to publish" in caught.value.message
        assert time.monotonic() - started < 6
        # Local work goes on: the workers answer calls and /health.
        assert (await publisher.invoke("worker"))["pid"] != sub_pid
        assert await ready_statuses() == [503, 503]

        redis.start()
        await poll(lambda: all_ready(200), "/ready 200 on both workers after Redis is back", 30)
        # /ready 200 means resubscribed: the first publish after it is delivered.
        assert await received("after")

    assert await worker_pids() == pids_before  # nobody crashed or was restarted
    assert not cluster.matches(r"restarting in")
    _, metrics = await ahttp_get(cluster.status[0] + "/metrics")
    _, metrics1 = await ahttp_get(cluster.status[1] + "/metrics")
    text = metrics + metrics1
    assert 'hubbub_broker_errors_total{kind="publish"' in text or "hubbub_broker_errors_total{" in text
    assert any(
        line.startswith("hubbub_broker_errors_total")
        and 'kind="connection"' in line
        and not line.endswith(" 0.0")
        for line in text.splitlines()
    )
