"""Publishing from a backend with hubbub.emitter, to real workers: ``hubbub run --workers 2`` on
standalone Redis and on a Redis Cluster, no hubbub server in the publisher's path.

* A plain synchronous script (``emitter_script.py``, its own process, no event loop) publishes and
  broadcasts; the official JavaScript client, subscribed through both workers (one client on
  each), receives every message in order. The same with AsyncEmitter under asyncio.
* On a history channel the emitter (set up from the workers' own config file) numbers its
  publications after the workers' publishes and before the next ones: a subscriber on the other
  worker gets offsets 1..N with one epoch, no gap and no repeat.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio

from ..conftest import INTEROP, RedisCluster, RedisProcess, reap
from .conftest import ClusterFactory, client_on_worker
from .test_supervisor import _read_json_lines

pytestmark = [pytest.mark.redis, pytest.mark.trio]

HERE = Path(__file__).resolve().parent
MESSAGES = 200


async def _emit(redis_url: str, channel: str, count: int, *args: str) -> list[Any]:
    """Run emitter_script.py to its end; the positions it printed."""
    command = [sys.executable, str(HERE / "emitter_script.py"), "--redis", redis_url]
    command += ["--channel", channel, "--count", str(count), *args]
    with trio.fail_after(40):
        done = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    positions: list[Any] = json.loads(done.stdout)
    return positions


async def _subscriber(url: str, channel: str, avoid: int | None) -> trio.Process:
    """Start cross_worker.js subscribed to ``channel`` (on a worker other than ``avoid``)."""
    command = ["node", "cross_worker.js", "--url", url, "--channel", channel, "--count", str(MESSAGES)]
    if avoid is not None:
        command += ["--avoid", str(avoid)]
    return await trio.lowlevel.open_process(command, cwd=INTEROP, stdout=subprocess.PIPE)


@pytest.mark.interop
@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", ["sync", "asyncio"])
@pytest.mark.parametrize("backend", ["redis", "cluster"])
async def test_the_official_client_on_each_worker_receives_every_emitted_message_in_order(
    hubbub_cluster: ClusterFactory, request: pytest.FixtureRequest, prefix: str, backend: str, mode: str
) -> None:
    if shutil.which("node") is None or not (INTEROP / "node_modules").is_dir():
        pytest.fail("node and tests/interop/node_modules are required (run `make install`)")
    redis: RedisProcess | RedisCluster = request.getfixturevalue(
        "redis_server" if backend == "redis" else "redis_cluster"
    )
    cluster = hubbub_cluster("--broker", redis.url, "--broker-prefix", prefix)
    channel = f"room-{uuid.uuid4().hex[:8]}"
    nodes: list[trio.Process] = []
    try:
        async with trio.open_nursery() as nursery:
            lines: list[tuple[dict[str, Any], trio.MemoryReceiveChannel[Any]]] = []
            for _ in range(2):
                send, receive = trio.open_memory_channel[Any](10)
                avoid = lines[0][0]["pid"] if lines else None
                node = await _subscriber(cluster.url, channel, avoid)
                nodes.append(node)
                assert node.stdout is not None
                nursery.start_soon(_read_json_lines, node.stdout, send)
                with trio.fail_after(20):
                    ready = await receive.receive()
                assert ready["event"] == "ready", ready
                lines.append((ready, receive))
            pids = {ready["pid"] for ready, _ in lines}
            assert len(pids) == 2, "the two subscribers are on one worker"
            extra = ["--prefix", prefix] + (["--asyncio"] if mode == "asyncio" else [])
            positions = await _emit(redis.url, channel, MESSAGES, *extra)
            assert positions == [None] * MESSAGES
            for _, receive in lines:
                with trio.fail_after(20):
                    done = await receive.receive()
                assert done["event"] == "done", done
                assert done["order"] == list(range(MESSAGES))
            nursery.cancel_scope.cancel()
    finally:
        for node in nodes:
            await reap(node)


HISTORY_CONFIG = """
broker_prefix = "{prefix}"

[[channels]]
match = "hist/*"
history_size = 100
history_ttl = 300
"""


@pytest.mark.timeout(60)
async def test_emitted_offsets_go_on_from_the_workers_with_no_gap_and_no_repeat(
    hubbub_cluster: ClusterFactory, redis_server: RedisProcess, prefix: str, tmp_path: Path
) -> None:
    config = tmp_path / "hubbub.toml"
    config.write_text(HISTORY_CONFIG.format(prefix=prefix))
    cluster = hubbub_cluster("--broker", redis_server.url, "--config", str(config))
    name = f"hist/{uuid.uuid4().hex[:8]}"
    async with (
        client_on_worker(cluster.url) as (publisher, worker_a),
        client_on_worker(cluster.url, avoid={worker_a}) as (subscriber, _),
    ):
        channel = subscriber.subscribe(name, max_size=100)
        await channel.wait_subscribed(5)
        for number in range(3):
            await publisher.publish(name, number)
        emitted = await _emit(redis_server.url, name, 4, "--config", str(config), "--other", "plain")
        for number in range(7, 10):
            await publisher.publish(name, number)
        got = []
        with trio.fail_after(15):
            while len(got) < 10:
                got.append(await channel.receive_publication())
    epoch = got[0].epoch
    assert [(p.offset, p.epoch) for p in got] == [(offset, epoch) for offset in range(1, 11)]
    assert [p.data for p in got[:3] + got[7:]] == [0, 1, 2, 7, 8, 9]
    assert [p.data["i"] for p in got[3:7]] == [0, 1, 2, 3]
    assert emitted == [[offset, epoch] for offset in range(4, 8)]
