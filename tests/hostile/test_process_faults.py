"""Process faults: a worker killed under its clients, Redis killed under a worker, no descriptors left.

Extends tests/cluster/test_supervisor.py (which follows the killed worker's own clients as they
reconnect, and the cluster's ``/ready`` through a Redis outage) with what a bystander sees: the
clients of the worker that was not killed are never disconnected, new clients are served by the
restarted worker; during a Redis outage every client gets a ``BrokerError`` that names no host,
port or exception, the log says it in a few lines and no traceback, and everything recovers; a
worker out of file descriptors backs off, sheds the silent sockets and serves again.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from ..cluster import conftest as cluster_fixtures
from ..cluster import test_bad_input as bad
from ..cluster.conftest import ClusterFactory
from ..conftest import RedisProcess
from .probes import assert_no_traceback, leaks

hubbub_cluster = cluster_fixtures.hubbub_cluster  # the supervisor fixture, for this module too


def _wait_for(predicate: Callable[[], Any], what: str, timeout: float = 15) -> Any:
    """Poll ``predicate`` until it returns something truthy (bounded); return that."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.05)
    return result


def _read_forever(p: bad.Peer) -> None:
    while True:
        p.recv()


def _worker_of(p: bad.Peer) -> int:
    pid: int = p.invoke("worker")["data"]["pid"]
    return pid


def _roundtrip(p: bad.Peer, channel: str, data: Any) -> None:
    """``p`` (subscribed to ``channel``) publishes ``data`` and gets it back, ack and delivery."""
    cid = p.request("#publish", {"channel": channel, "data": data})
    got = [p.recv(), p.recv()]
    assert {"rid": cid} in got and {"event": "#publish", "data": {"channel": channel, "data": data}} in got, (
        got
    )


@pytest.mark.timeout(60)
def test_sigkilled_worker_is_restarted_and_the_other_workers_clients_never_notice(
    hubbub_cluster: ClusterFactory,
) -> None:
    cluster = hubbub_cluster("--log-level", "INFO", workers=2)
    channel = f"c-{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        by_worker: dict[int, list[bad.Peer]] = {}
        for _ in range(60):  # connections are spread by the kernel: open until each worker has 3
            p = stack.enter_context(bad.peer(cluster.url))
            p.handshake()
            by_worker.setdefault(_worker_of(p), []).append(p)
            if len(by_worker) == 2 and all(len(peers) >= 3 for peers in by_worker.values()):
                break
        victim_pid, bystander_pid = sorted(by_worker, key=lambda pid: len(by_worker[pid]))[:2]
        assert len(by_worker[victim_pid]) >= 3 and len(by_worker[bystander_pid]) >= 3, by_worker
        for p in by_worker[bystander_pid]:
            assert p.invoke("#subscribe", {"channel": channel}) == {"rid": p.last_cid}

        since = len(cluster.lines)
        os.kill(victim_pid, signal.SIGKILL)
        for p in by_worker[victim_pid]:  # their TCP connections end with the process
            with pytest.raises(ConnectionClosed):
                _read_forever(p)
        ready = _wait_for(lambda: cluster.matches(r"worker \d+ ready \(pid (\d+)\)", since), "the restart")
        new_pid = int(ready[0].group(1))
        assert new_pid not in (victim_pid, bystander_pid)

        for i, p in enumerate(by_worker[bystander_pid]):  # never disconnected, still served
            assert _worker_of(p) == bystander_pid
            _roundtrip(p, channel, i)
            for other in by_worker[bystander_pid]:
                if other is not p:
                    assert other.recv() == {"event": "#publish", "data": {"channel": channel, "data": i}}

        for _ in range(60):  # a new client reaches the restarted worker and is served there
            with bad.peer(cluster.url) as p:
                p.handshake()
                if _worker_of(p) == new_pid:
                    p.invoke("#subscribe", {"channel": channel})
                    _roundtrip(p, channel, "from the new worker")
                    break
        else:
            raise AssertionError(f"no new connection reached the restarted worker {new_pid}")
    assert not cluster.matches(r"Traceback"), cluster.output()
    assert cluster.proc.poll() is None
    bad.assert_serves(cluster)


def _ready(server: Any) -> int:
    return bad.http_get(server, "/ready")[0]


@pytest.mark.redis
@pytest.mark.timeout(90)
def test_redis_killed_under_a_worker_tells_clients_nothing_and_recovers(
    start_server: Callable[..., Any], own_redis_server: RedisProcess, prefix: str
) -> None:
    redis = own_redis_server
    server = start_server("--broker", redis.url, "--broker-prefix", prefix, "--log-level", "INFO")
    channel = f"c-{uuid.uuid4().hex[:8]}"
    with bad.peer(server.url) as subscriber, bad.peer(server.url) as p, bad.peer(server.url) as q:
        for peer in (subscriber, p, q):
            peer.handshake()
        subscriber.invoke("#subscribe", {"channel": channel})
        p.invoke("#publish", {"channel": channel, "data": "before"})
        assert subscriber.recv()["data"]["data"] == "before"
        assert _ready(server) == 200

        redis.kill()
        _wait_for(lambda: _ready(server) == 503, "/ready 503 during the outage")
        started = time.monotonic()
        cids = {
            peer: [peer.request("#publish", {"channel": channel, "data": i}) for i in range(10)]
            + [peer.request("#subscribe", {"channel": f"{channel}-{i}"}) for i in range(10)]
            for peer in (p, q)
        }
        for peer, sent in cids.items():
            replies = [peer.recv(timeout=15) for _ in sent]
            assert [r["rid"] for r in replies] == sent
            for reply in replies:
                error = reply["error"]
                assert error["name"] == "BrokerError", reply
                assert error["message"].endswith(" - the broker is unavailable"), reply
                for detail in (str(redis.port), "127.0.0.1", "localhost", "redis", "Redis"):
                    assert detail not in error["message"].split(" - ")[1], (detail, reply)
                assert not leaks(error["message"]), reply
        assert time.monotonic() - started < 15
        assert _ready(server) == 503

        redis.start()
        _wait_for(lambda: _ready(server) == 200, "/ready 200 after Redis is back", 30)
        # The subscription made before the outage is back: the next publication arrives.
        assert p.invoke("#publish", {"channel": channel, "data": "after"}) == {"rid": p.last_cid}
        assert subscriber.recv()["data"] == {"channel": channel, "data": "after"}
        assert q.invoke("#subscribe", {"channel": f"{channel}-new"}) == {"rid": q.last_cid}

    broker_lines = [line for line in server.lines if "broker" in line.lower()]
    assert len(broker_lines) <= 12, "\n".join(broker_lines)  # 40 failures: a few lines, not 40
    assert_no_traceback(server)
    bad.assert_serves(server)


@pytest.mark.timeout(40)
def test_running_out_of_descriptors_is_survived(start_server: Callable[..., Any]) -> None:
    server = start_server("--handshake-timeout", "1")
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (64, 64))  # the worker we started
    silent = [socket.create_connection(("127.0.0.1", server.port), timeout=bad.TIMEOUT) for _ in range(150)]
    try:
        for sock in silent:  # each is accepted in turn and dropped at the handshake timeout
            assert bad.read_until_eof(sock, timeout=15) == b""
    finally:
        for sock in silent:
            sock.close()
    accept_failures = [line for line in server.lines if "accept failed" in line]
    assert 1 <= len(accept_failures) <= 60, len(accept_failures)  # it ran out, backed off, did not spin
    assert_no_traceback(server)
    bad.assert_serves(server)
