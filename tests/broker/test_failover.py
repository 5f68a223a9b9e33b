"""Real topology changes under two brokers ("workers"): Sentinel failovers and a Cluster slot move.

Sentinel: a primary ``redis-server``, one replica (``--replicaof``) and one ``redis-sentinel``
(quorum 1, short ``down-after-milliseconds``), all on free loopback ports in the test's tmp dir.
Two brokers open ``redis+sentinel://`` URLs, subscribe a channel, and publish continuously while
the primary changes, once by ``SENTINEL FAILOVER`` and once by SIGKILLing the primary.

Cluster: the shared 3-master cluster; the slot of the test's channel is moved to another master
with ``CLUSTER SETSLOT`` (IMPORTING, MIGRATING, then NODE on every master), which makes Redis send
an ``SUNSUBSCRIBE`` to the channel's subscribers on the old shard.

Each test asserts that both brokers notice (``ready`` goes False, then True), resubscribe on the new
primary/shard (checked on the server with ``PUBSUB NUMSUB``/``SHARDNUMSUB``), and deliver again;
that every publish during the switch returned or raised ``BrokerUnavailable`` within its bound; and
that no publish that returned was lost by a worker subscribed on the same server (see
``_check_delivery`` for exactly what is and is not promised across workers).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from hubbub.broker import BrokerUnavailable, ManagedBroker, RedisBroker, open_broker

from .conftest import (
    REDIS_CLI,
    REDIS_SERVER,
    Collector,
    RedisCluster,
    RedisProcess,
    free_port,
    ping,
    wait_until,
)

pytestmark = [pytest.mark.redis, pytest.mark.trio]

SERVICE = "mymaster"
CHANNEL = "failover"
FAST: dict[str, Any] = {
    "backoff_initial": 0.02,
    "backoff_max": 0.2,
    "connect_timeout": 1.0,
    "publish_timeout": 2.0,
    "subscribe_timeout": 2.0,
    "failover_check_interval": 0.1,
}
#: A publish must return or raise within this (publish_timeout plus scheduling slack).
PUBLISH_BOUND = FAST["publish_timeout"] + 1.0


# -- redis-cli from trio (never blocks the event loop) -------------------------------------------


async def cli(port: int, *args: str) -> str:
    with trio.fail_after(10):
        result = await trio.run_process(
            [REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    return bytes(result.stdout).decode(errors="replace")


def cli_sync(port: int, *args: str) -> str:
    return subprocess.run(
        [REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        timeout=10,
        check=False,
    ).stdout.decode(errors="replace")


async def eventually(check: Callable[[], bool | Awaitable[bool]], what: str, timeout: float) -> None:
    """Poll ``check`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = trio.current_time() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if trio.current_time() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await trio.sleep(0.01)


def _replica_entries(text: str) -> list[dict[str, str]]:
    """Parse ``SENTINEL REPLICAS`` raw output (flat name/value lines per replica)."""
    entries: list[dict[str, str]] = []
    lines = text.strip().splitlines()
    current: dict[str, str] = {}
    for name, value in zip(lines[0::2], lines[1::2], strict=False):
        if name == "name" and current:
            entries.append(current)
            current = {}
        current[name] = value
    if current:
        entries.append(current)
    return entries


# -- the Sentinel topology -----------------------------------------------------------------------


@dataclass
class SentinelGroup:
    primary: RedisProcess
    replica: RedisProcess
    sentinel_port: int
    sentinel: subprocess.Popen[bytes]
    workdir: Path

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SERVICE}"

    async def primary_port(self) -> int | None:
        out = (await cli(self.sentinel_port, "sentinel", "get-master-addr-by-name", SERVICE)).split()
        return int(out[1]) if len(out) == 2 and out[1].isdigit() else None

    def log(self) -> str:
        return (self.workdir / "sentinel.log").read_text(errors="replace")[-3000:]


def _replica_synced(replica: RedisProcess) -> bool:
    return "master_link_status:up" in cli_sync(replica.port, "info", "replication")


def _sentinel_sees_replica(sentinel_port: int, replica: RedisProcess) -> bool:
    for entry in _replica_entries(cli_sync(sentinel_port, "sentinel", "replicas", SERVICE)):
        if (
            entry.get("port") == str(replica.port)
            and entry.get("flags") == "slave"
            and entry.get("master-link-status") == "ok"
        ):
            return True
    return False


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[SentinelGroup]:
    """Primary + one replica + one sentinel (quorum 1), all ours, all on free loopback ports."""
    fast_sync = ["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]
    primary = RedisProcess(free_port(), tmp_path / "primary", list(fast_sync))
    primary.start()
    replica = RedisProcess(
        free_port(), tmp_path / "replica", [*fast_sync, "--replicaof", "127.0.0.1", str(primary.port)]
    )
    sentinel: subprocess.Popen[bytes] | None = None
    try:
        replica.start()
        wait_until(lambda: _replica_synced(replica), "replica in sync with the primary", 15, 0.05)
        sport = free_port()
        conf = tmp_path / "sentinel.conf"
        conf.write_text(
            f"port {sport}\nbind 127.0.0.1\ndir {tmp_path}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 500\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        with (tmp_path / "sentinel.log").open("wb") as log:
            sentinel = subprocess.Popen(
                [REDIS_SERVER, str(conf), "--sentinel"], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
            )
        wait_until(lambda: ping(sport), "sentinel up", 15)
        wait_until(lambda: _sentinel_sees_replica(sport, replica), "sentinel knows the replica", 15, 0.05)
        yield SentinelGroup(primary, replica, sport, sentinel, tmp_path)
    finally:
        if sentinel is not None and sentinel.poll() is None:  # by PID: the process we started
            sentinel.terminate()
            try:
                sentinel.wait(10)
            except subprocess.TimeoutExpired:
                sentinel.kill()
                sentinel.wait(5)
        replica.stop()
        primary.stop()


# -- workers, publishers, watchers ---------------------------------------------------------------


@dataclass
class Worker:
    name: str
    broker: ManagedBroker
    got: Collector
    #: ``ready`` as sampled every millisecond, deduplicated: [True, False, True] = one outage.
    ready_trace: list[bool] = field(default_factory=list)
    ok: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    attempted: int = 0
    slowest: float = 0.0

    @property
    def stats(self) -> Any:
        assert isinstance(self.broker, RedisBroker)
        return self.broker.stats

    async def watch_ready(self) -> None:
        while True:
            ready = self.broker.ready
            if not self.ready_trace or self.ready_trace[-1] != ready:
                self.ready_trace.append(ready)
            await trio.sleep(0.001)

    async def publish_until(self, stop: trio.Event) -> None:
        """Publish ``[name, seq]`` back to back; every call must return or raise within the bound."""
        seq = 0
        while not stop.is_set():
            started = time.monotonic()
            self.attempted = seq + 1
            try:
                with trio.move_on_after(PUBLISH_BOUND) as scope:
                    await self.broker.publish(CHANNEL, [self.name, seq])
                if scope.cancelled_caught:
                    raise AssertionError(f"{self.name}: publish #{seq} hung for {PUBLISH_BOUND}s")
                self.ok.append(seq)
            except BrokerUnavailable:
                self.failed.append(seq)
            self.slowest = max(self.slowest, time.monotonic() - started)
            seq += 1
            await trio.sleep(0.002)  # pacing, not synchronisation

    def seqs_from(self, origin: str) -> list[int]:
        return [data[1] for data in self.got.on(CHANNEL) if isinstance(data, list) and data[0] == origin]

    def went_down_and_up(self) -> bool:
        return self.ready_trace[:1] == [True] and False in self.ready_trace and self.ready_trace[-1] is True


def _check_delivery(workers: list[Worker], switch_window: dict[str, tuple[int, int]]) -> None:
    """What delivery promises survive a topology change.

    * Every worker sees each origin's messages in publish order, each at most once.
    * A publish that returned was accepted by the server the publisher was connected to; every
      worker subscribed *on that server* gets it. So each worker receives every one of its own
      publishes that returned, failover or not.
    * Across workers, outside the switch window (from the first worker noticing to the last one
      being resubscribed on the new server) every publish that returned reaches every worker.
      Inside it, a worker that already moved misses what another one still publishes to the old
      server: the broker's documented at-most-once delivery to remote workers. That window is
      reported, and it must be short.
    """
    for receiver in workers:
        for origin in workers:
            seqs = receiver.seqs_from(origin.name)
            assert seqs == sorted(set(seqs)), f"{receiver.name} got {origin.name}'s messages out of order"
            assert set(seqs) <= set(range(origin.attempted)), "delivered something never published"
    for worker in workers:
        missing = sorted(set(worker.ok) - set(worker.seqs_from(worker.name)))
        assert not missing, (
            f"{worker.name} lost {len(missing)} of its own acknowledged publishes: {missing[:20]}"
        )
    for receiver in workers:
        for origin in workers:
            lo, hi = switch_window[origin.name]
            got = set(receiver.seqs_from(origin.name))
            missing = [s for s in origin.ok if s not in got and not lo <= s <= hi]
            assert not missing, (
                f"{receiver.name} lost {len(missing)} acknowledged publishes of {origin.name} "
                f"outside the switch window {lo}..{hi}: {missing[:20]}"
            )


async def _resubscribed_on(port: int, name: str, count: int, *, sharded: bool = False) -> bool:
    command = "shardnumsub" if sharded else "numsub"
    out = (await cli(port, "pubsub", command, name)).split()
    return len(out) == 2 and out[1] == str(count)


async def _replica_serves(g: SentinelGroup, name: str) -> bool:
    """The sentinel names the replica as primary and both brokers are resubscribed there."""
    return await g.primary_port() == g.replica.port and await _resubscribed_on(g.replica.port, name, 2)


async def _run_switch(
    workers: list[Worker],
    switch: Callable[[], Awaitable[None]],
    settled: Callable[[], Awaitable[bool]],
    *,
    timeout: float,
) -> dict[str, tuple[int, int]]:
    """Publish from every worker while ``switch`` changes the topology, until ``settled``.

    Returns, per worker, the range of its publish numbers issued between the switch starting and
    every worker being ready again and resubscribed on the new server (the switch window).
    """
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        for worker in workers:
            nursery.start_soon(worker.watch_ready)
        async with trio.open_nursery() as publishers:
            for worker in workers:
                publishers.start_soon(worker.publish_until, stop)
            await eventually(lambda: all(len(w.ok) >= 20 for w in workers), "traffic before the switch", 5)
            first = {w.name: len(w.ok) + len(w.failed) for w in workers}
            await switch()
            await eventually(
                lambda: all(w.went_down_and_up() for w in workers),
                "every worker went down and came back",
                timeout,
            )
            await eventually(settled, "every worker resubscribed on the new server", timeout)
            window = {w.name: (first[w.name], len(w.ok) + len(w.failed)) for w in workers}
            after = {w.name: len(w.ok) for w in workers}
            await eventually(
                lambda: all(len(w.ok) >= after[w.name] + 30 for w in workers), "traffic after the switch", 5
            )
            stop.set()  # each publisher finishes the publish it has in flight, then returns
        await eventually(
            lambda: all(o.ok[-1] in r.seqs_from(o.name) for r in workers for o in workers),
            "the last publishes delivered everywhere",
            5,
        )
        nursery.cancel_scope.cancel()
    return window


async def _open_workers(stack: AsyncExitStack, url: str, prefix: str, n: int = 2) -> list[Worker]:
    workers = []
    for i in range(n):
        broker = await stack.enter_async_context(open_broker(url, prefix=prefix, **FAST))
        assert broker.ready
        worker = Worker(f"w{i + 1}", broker, Collector())
        broker.attach(worker.got)
        await broker.subscribe(CHANNEL)
        workers.append(worker)
    for worker in workers:  # delivery works before the switch
        await worker.broker.publish(CHANNEL, [worker.name, -1])
    for worker in workers:
        await worker.got.wait_count(CHANNEL, len(workers), timeout=5)
    for worker in workers:
        worker.got.messages.clear()
    return workers


def _report(workers: list[Worker], window: dict[str, tuple[int, int]]) -> str:
    parts = []
    for w in workers:
        lo, hi = window[w.name]
        parts.append(
            f"{w.name}: {len(w.ok)} ok, {len(w.failed)} BrokerUnavailable, window {lo}..{hi}, "
            f"slowest publish {w.slowest:.3f}s, ready trace {w.ready_trace}, "
            f"sessions {w.stats.sessions}, last error {w.stats.last_error}"
        )
    for r in workers:
        for o in workers:
            if r is not o:
                lost = len(set(o.ok) - set(r.seqs_from(o.name)))
                parts.append(f"{r.name} missed {lost} acknowledged publishes of {o.name} (all in the window)")
    return "\n".join(parts)


# -- Sentinel ------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
async def test_sentinel_failover_command(sentinel_group: SentinelGroup, prefix: str) -> None:
    """``SENTINEL FAILOVER``: the old primary stays up (and a primary, for a while) while the replica
    is promoted; the brokers follow the sentinel to the new primary and resubscribe there."""
    g = sentinel_group
    name = prefix + CHANNEL
    async with AsyncExitStack() as stack:
        workers = await _open_workers(stack, g.url, prefix)
        assert await _resubscribed_on(g.primary.port, name, 2)

        async def failover() -> None:
            async def accepted() -> bool:
                return "OK" in await cli(g.sentinel_port, "sentinel", "failover", SERVICE)

            await eventually(accepted, "SENTINEL FAILOVER accepted", 10)

        window = await _run_switch(workers, failover, partial(_replica_serves, g, name), timeout=15)
        print(_report(workers, window))
        _check_delivery(workers, window)
        for w in workers:
            assert "sentinel failover: primary moved" in str(w.stats.last_error), w.stats.last_error


@pytest.mark.timeout(30)
async def test_sentinel_primary_killed(sentinel_group: SentinelGroup, prefix: str) -> None:
    """SIGKILL the primary: publishes fail fast until the sentinel promoted the replica, then the
    brokers reconnect to it, resubscribe, and deliver again."""
    g = sentinel_group
    name = prefix + CHANNEL
    async with AsyncExitStack() as stack:
        workers = await _open_workers(stack, g.url, prefix)

        async def kill() -> None:
            g.primary.kill()  # SIGKILL, by PID, the process this test started

        window = await _run_switch(workers, kill, partial(_replica_serves, g, name), timeout=20)
        print(_report(workers, window))
        _check_delivery(workers, window)
        for w in workers:
            assert w.failed, "publishes while no primary was reachable must fail"


# -- Redis Cluster -------------------------------------------------------------------------------


def _cluster_nodes(port: int) -> dict[int, tuple[str, set[int]]]:
    """``CLUSTER NODES`` as {port: (node id, slots)} for the masters."""
    nodes: dict[int, tuple[str, set[int]]] = {}
    for line in cli_sync(port, "cluster", "nodes").splitlines():
        fields = line.split()
        if len(fields) < 8 or "master" not in fields[2]:
            continue
        node_port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
        slots: set[int] = set()
        for spec in fields[8:]:
            if spec.startswith("["):
                continue
            a, _, b = spec.partition("-")
            slots.update(range(int(a), int(b or a) + 1))
        nodes[node_port] = (fields[0], slots)
    return nodes


def _move_slot(cluster: RedisCluster, slot: int, to_port: int, keys: tuple[str, ...] = ()) -> int:
    """Move ``slot`` (empty but for ``keys``, which are migrated) to the master on ``to_port``;
    return the port that owned it."""
    ports = [n.port for n in cluster.nodes]
    nodes = _cluster_nodes(ports[0])
    from_port = next(p for p, (_, slots) in nodes.items() if slot in slots)
    if from_port == to_port:
        return from_port
    src_id, dst_id = nodes[from_port][0], nodes[to_port][0]
    assert "OK" in cli_sync(to_port, "cluster", "setslot", str(slot), "importing", src_id)
    assert "OK" in cli_sync(from_port, "cluster", "setslot", str(slot), "migrating", dst_id)
    if keys:
        migrated = cli_sync(from_port, "migrate", "127.0.0.1", str(to_port), "", "0", "5000", "keys", *keys)
        assert "OK" in migrated, migrated
    assert cli_sync(from_port, "cluster", "countkeysinslot", str(slot)).strip() == "0"
    for port in [to_port, from_port, *(p for p in ports if p not in (to_port, from_port))]:
        assert "OK" in cli_sync(port, "cluster", "setslot", str(slot), "node", dst_id)
    return from_port


def _slot_owner_everywhere(cluster: RedisCluster, slot: int, port: int) -> bool:
    return all(slot in _cluster_nodes(n.port).get(port, ("", set()))[1] for n in cluster.nodes)


@pytest.mark.timeout(30)
async def test_cluster_slot_move(redis_cluster: RedisCluster, prefix: str) -> None:
    """Move the channel's slot to another master: Redis SUNSUBSCRIBEs the brokers on the old shard,
    they rebuild their session from the new slot map and resubscribe on the new shard."""
    cluster = redis_cluster
    name = prefix + CHANNEL
    slot = int(cli_sync(cluster.nodes[0].port, "cluster", "keyslot", name).strip())
    nodes = _cluster_nodes(cluster.nodes[0].port)
    from_port = next(p for p, (_, slots) in nodes.items() if slot in slots)
    to_port = next(n.port for n in cluster.nodes if n.port != from_port)
    try:
        async with AsyncExitStack() as stack:
            workers = await _open_workers(stack, cluster.url, prefix)
            assert await _resubscribed_on(from_port, name, 2, sharded=True)

            async def move() -> None:
                await trio.to_thread.run_sync(_move_slot, cluster, slot, to_port)

            async def settled() -> bool:
                return await _resubscribed_on(to_port, name, 2, sharded=True) and await _resubscribed_on(
                    from_port, name, 0, sharded=True
                )

            window = await _run_switch(workers, move, settled, timeout=15)
            print(_report(workers, window))
            _check_delivery(workers, window)
            for w in workers:
                assert "unsubscribed" in str(w.stats.last_error), w.stats.last_error
    finally:  # give the slot back so the shared cluster keeps its original layout
        _move_slot(cluster, slot, from_port)
        wait_until(lambda: _slot_owner_everywhere(cluster, slot, from_port), "slot moved back", 10, 0.05)


@pytest.mark.timeout(30)
async def test_sentinel_history_survives_a_failover(sentinel_group: SentinelGroup, prefix: str) -> None:
    """Channel history through Sentinel: the replica holds the stream and its meta, so after
    ``SENTINEL FAILOVER`` offsets continue in the same epoch and the history reads whole."""
    from hubbub.broker import HistoryBroker, HistoryOptions

    g = sentinel_group
    options = HistoryOptions(size=100, ttl=60)
    async with open_broker(g.url, prefix=prefix, **FAST) as broker:
        assert isinstance(broker, HistoryBroker)
        first = [await broker.publish_history("hist", i, options) for i in range(5)]
        assert [p.offset for p in first] == [1, 2, 3, 4, 5]
        epoch = first[0].epoch
        await eventually(lambda: _replica_synced(g.replica), "replica in sync", 10)

        async def accepted() -> bool:
            return "OK" in await cli(g.sentinel_port, "sentinel", "failover", SERVICE)

        await eventually(accepted, "SENTINEL FAILOVER accepted", 10)
        await eventually(lambda: g.primary_port(), "a primary", 10)

        async def moved() -> bool:
            return await g.primary_port() == g.replica.port

        await eventually(moved, "the replica promoted", 15)

        async def published() -> bool:
            try:
                position = await broker.publish_history("hist", 5, options)
            except BrokerUnavailable:
                return False
            assert position.offset == 6 and position.epoch == epoch, position
            return True

        await eventually(published, "a history publish on the new primary", 15)
        page = await broker.history("hist", options)
        assert [(e.offset, e.data) for e in page.entries] == [(i + 1, i) for i in range(6)]
        assert page.position.epoch == epoch
