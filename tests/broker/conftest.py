"""Real Redis processes for the broker tests: a standalone server and a 3-master cluster.

Servers listen on free loopback ports (never 6379), keep no data on disk, and are waited for by
polling ``PING`` against a deadline. Only processes started here are ever signalled, by PID.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_handed_out: set[int] = set()


def free_port(*, with_bus: bool = False) -> int:
    """A free loopback port; with ``with_bus`` also ``port + 10000`` (the cluster bus) is free."""
    for _ in range(1000):
        port = random.randint(20000, 29999)
        if port in _handed_out or port == 6379:
            continue
        if _port_free(port) and (not with_bus or _port_free(port + 10000)):
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port found")


def ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def wait_until(predicate: object, what: str, timeout: float = 15.0, interval: float = 0.02) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout}s")
        time.sleep(interval)


@dataclass
class RedisProcess:
    """One redis-server we started. ``kill()`` sends SIGKILL to its PID; ``start()`` (re)starts it."""

    port: int
    workdir: Path
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            *self.extra,
        ]  # fmt: skip
        log = (self.workdir / "redis.log").open("ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        proc = self.proc

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {proc.returncode}:\n"
                    + (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                )
            return ping(self.port)

        wait_until(up, f"redis-server on port {self.port}", timeout)

    def kill(self) -> None:
        """SIGKILL the process we started (by its PID) and reap it."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def prefix() -> str:
    """A channel prefix of this test's own."""
    return f"t{uuid.uuid4().hex[:12]}:"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A standalone redis-server shared by the session (tests isolate by prefix)."""
    server = RedisProcess(free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A standalone redis-server for one test (fault tests kill and restart it)."""
    server = RedisProcess(free_port(), tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@dataclass
class RedisCluster:
    nodes: list[RedisProcess]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)


def _cluster_ok(port: int) -> bool:
    out = subprocess.run(
        [REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), "cluster", "info"],
        capture_output=True,
        timeout=5,
        check=False,
    ).stdout
    return b"cluster_state:ok" in out


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A real 3-master Redis Cluster (no replicas) on free ports."""
    base = tmp_path_factory.mktemp("cluster")
    nodes = []
    for i in range(3):
        port = free_port(with_bus=True)
        extra = [
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "5000",
        ]  # fmt: skip
        nodes.append(RedisProcess(port, base / f"node{i}", extra))
    with contextlib.ExitStack() as stack:
        for node in nodes:
            node.start()
            stack.callback(node.stop)
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        create = [REDIS_CLI, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"]
        subprocess.run(
            create,
            check=True,
            capture_output=True,
            timeout=30,
        )
        for node in nodes:
            wait_until(lambda node=node: _cluster_ok(node.port), f"cluster_state:ok on {node.port}", 30, 0.1)
        yield RedisCluster(nodes)


class Collector:
    """A ``deliver`` function that records messages and lets a test wait for them (no sleeps)."""

    def __init__(self) -> None:
        import trio

        self._trio = trio
        self.messages: list[tuple[str, object]] = []
        self._changed = trio.Event()

    def __call__(self, channel: str, data: object) -> None:
        self.messages.append((channel, data))
        self._changed.set()
        self._changed = self._trio.Event()

    def on(self, channel: str) -> list[object]:
        return [data for ch, data in self.messages if ch == channel]

    async def wait_for(self, predicate: object, timeout: float = 10.0) -> None:
        assert callable(predicate)
        with self._trio.fail_after(timeout):
            while not predicate():
                await self._changed.wait()

    async def wait_count(self, channel: str, count: int, timeout: float = 10.0) -> list[object]:
        await self.wait_for(lambda: len(self.on(channel)) >= count, timeout)
        return self.on(channel)


@pytest.fixture
def make_collector() -> type[Collector]:
    return Collector
