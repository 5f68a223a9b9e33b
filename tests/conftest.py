"""Shared fixtures: real server processes on free ports.

Redis: ``redis_server`` (a standalone redis-server shared by the session), ``own_redis_server``
(one per test, for fault tests that kill and restart it), ``redis_cluster`` (a 3-master Redis
Cluster) and ``prefix`` (a channel prefix of the test's own). Servers listen on free loopback
ports (never 6379), keep no data on disk, and are waited for by polling ``PING`` against a
deadline. Only processes started here are ever signalled, by PID.

``hubbub_server(codec=..., *args)`` starts ``python -m hubbub.cluster run --port 0`` with the interop
test app and returns its ``ws://`` URL once it prints its listening line; ``official_server(...)``
does the same for ``node tests/interop/sc_server.js`` (socketcluster-server@20 from npm). Every
process is stopped (SIGTERM, then SIGKILL) when the test ends.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trio

ROOT = Path(__file__).resolve().parent.parent
INTEROP = ROOT / "tests" / "interop"
LISTENING = re.compile(r"listening on (wss?://\S+)")


@dataclass
class RunningProcess:
    """A started process with its output lines collected in the background."""

    proc: subprocess.Popen[str]
    url: str
    lines: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def stop(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def start_process(cmd: list[str], *, cwd: Path, timeout: float = 30) -> RunningProcess:
    """Start ``cmd`` and wait until it prints ``listening on ws://...``; raise if it exits first."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines: list[str] = []
    found: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                match = LISTENING.search(line)
                if match:
                    found.put(match.group(1))
        found.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        url = found.get(timeout=timeout)
    except queue.Empty:
        proc.kill()
        raise RuntimeError(f"{cmd} did not start within {timeout}s:\n" + "\n".join(lines)) from None
    if url is None:
        proc.wait(5)
        raise RuntimeError(f"{cmd} exited with {proc.returncode}:\n" + "\n".join(lines))
    return RunningProcess(proc, url, lines)


def build_wheel(source: Path, out: Path, timeout: float = 170) -> Path:
    """Build hubbub's wheel from ``source`` into ``out`` (no dependencies, no build isolation)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("hubbub-*.whl")
    return wheel


def http_get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    """``GET url``: (status, body); status 0 when the connection fails."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/")
        response = conn.getresponse()
        return response.status, response.read().decode()
    except OSError:
        return 0, ""
    finally:
        conn.close()


def raw_peer(url: str, packets: list[dict[str, object]], *, rcvbuf: int | None = None) -> socket.socket:
    """A bare TCP WebSocket client: upgrade, send ``packets`` (masked text frames), then nothing more.

    For tests that need a peer that never reads (slow consumers, stubborn peers on shutdown).
    """
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.sendall(
        b"GET /socketcluster/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(4096)
    assert response.startswith(b"HTTP/1.1 101"), response
    for packet in packets:
        payload = json.dumps(packet).encode()
        assert len(payload) < 126
        sock.sendall(bytes([0x81, 0x80 | len(payload)]) + b"\x00\x00\x00\x00" + payload)
    return sock


def stalled_subscriber(url: str, channel: str) -> socket.socket:
    """A raw WebSocket client that subscribes to ``channel`` with a 4 KB receive buffer, then never reads."""
    packets: list[dict[str, object]] = [
        {"event": "#handshake", "data": {}, "cid": 1},
        {"event": "#subscribe", "data": {"channel": channel}, "cid": 2},
    ]
    return raw_peer(url, packets, rcvbuf=4096)


@contextlib.contextmanager
def official_subscriber(url: str, channel: str, count: int = 1) -> Iterator[Callable[[], object]]:
    """The official client (tests/interop/subscriber.js) subscribed to ``channel``: yields ``next_event()``.

    The subscription is acknowledged when the block starts; leaving the block normally waits for
    the script to exit 0 after ``count`` messages, and it is killed if the block fails.
    """
    cmd = ["node", "subscriber.js", "--url", url, "--channel", channel, "--count", str(count)]
    node = subprocess.Popen(cmd, cwd=INTEROP, stdout=subprocess.PIPE, text=True)
    try:
        assert node.stdout is not None
        stdout = node.stdout

        def next_event() -> object:
            return json.loads(stdout.readline())

        assert next_event() == {"event": "ready"}
        yield next_event
        assert node.wait(10) == 0
    finally:
        if node.poll() is None:
            node.kill()
        node.wait(5)
        if node.stdout is not None:
            node.stdout.close()


def stop_and_close(started: list[RunningProcess]) -> None:
    """Stop ``started`` and close their output pipes once the reader threads have seen EOF.

    So no unclosed pipe is left for the garbage collector to warn about.
    """
    for running in started:
        running.stop()
    for thread in threading.enumerate():
        if thread.name.endswith("(pump)"):
            thread.join(5)
    for running in started:
        if running.proc.stdout is not None:
            running.proc.stdout.close()


async def reap(process: trio.Process) -> None:
    """Kill ``process`` unless it exited, and wait for it: shielded from cancellation, at most 5 s."""
    with trio.move_on_after(5) as scope:
        scope.shield = True
        if process.returncode is None:
            process.kill()
        await process.wait()


ServerFactory = Callable[..., RunningProcess]


@pytest.fixture
def hubbub_server() -> Iterator[ServerFactory]:
    """Factory: ``hubbub_server(codec="json", *extra_cli_args, app="hubbub_test_app:app")``."""
    started: list[RunningProcess] = []

    def start(codec: str = "json", *args: str, app: str | None = "hubbub_test_app:app") -> RunningProcess:
        cmd = [sys.executable, "-m", "hubbub.cluster", "run", "--port", "0", "--codec", codec]
        if app:
            cmd += ["--app", app]
        running = start_process([*cmd, *args], cwd=INTEROP)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def start_server(hubbub_server: ServerFactory) -> Iterator[Callable[..., RunningProcess]]:
    """``start_server(*cli_args, codec="json")``: a worker of the interop test app, stopped at the end."""
    started: list[RunningProcess] = []

    def start(*args: str, codec: str = "json") -> RunningProcess:
        running = hubbub_server(codec, *args)
        started.append(running)
        return running

    yield start
    stop_and_close(started)


@pytest.fixture
def official_server() -> Iterator[ServerFactory]:
    """Factory: ``official_server(codec="json", *extra_args)`` runs socketcluster-server@20."""
    if shutil.which("node") is None or not (INTEROP / "node_modules").is_dir():
        pytest.fail("node and tests/interop/node_modules are required (run `make install`)")
    started: list[RunningProcess] = []

    def start(codec: str = "json", *args: str) -> RunningProcess:
        running = start_process(["node", "sc_server.js", "--port", "0", "--codec", codec, *args], cwd=INTEROP)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


# -- Redis processes ---------------------------------------------------------------------------

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
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))  # up (NOAUTH: it wants a password)
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
        if not Path(REDIS_SERVER).is_file():
            pytest.fail(
                "redis-server is not installed: the Redis tests start their own. Install it "
                "(apt-get install redis-server) or run `bash .ci/run`, which does.",
                pytrace=False,
            )
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
