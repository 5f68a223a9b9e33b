"""Two hubbub hosts that share nothing but a Redis deliver to each other's clients.

"Hosts" are Linux network namespaces the test creates: ``hub-a``, ``hub-b`` and ``redis`` (names
with a random suffix). Each hub namespace has one veth link to the redis namespace and nothing
else, with private addresses that exist only inside these namespaces (``10.250.X.0/24``):

    hub-a 10.250.A.2 ── 10.250.A.1 ┐
                                   redis (redis-server on both addresses; no forwarding)
    hub-b 10.250.B.2 ── 10.250.B.1 ┘

redis-server runs in ``redis``; a two-worker ``hubbub run --host 0.0.0.0`` runs in each hub
namespace with ``--broker`` at its link's Redis address; the official socketcluster-client
subscribes in one hub namespace and hubbub's Python client publishes in the other. hub-a and hub-b
cannot reach each other (checked), so every message crossed through Redis.

Needs root (or CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2; the test skips, saying why,
without them. Everything it creates is removed at teardown: its processes are stopped by PID, then
the namespaces are deleted (which deletes the veth links inside them). No traffic leaves the
namespaces it creates.
"""

from __future__ import annotations

import json
import random
import secrets
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ..conftest import REDIS_CLI, REDIS_SERVER, RunningProcess, start_process
from .conftest import CLUSTER_APP_DIR, Children, JsonLines, deliver_in_order, require_node

pytestmark = [pytest.mark.redis, pytest.mark.interop, pytest.mark.slow]

MESSAGES = 300
HUB_PORT = 8000  # inside a fresh namespace nothing else listens
REDIS_PORT = 6379


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15, check=False)


def _ip_checked(*args: str) -> None:
    result = _ip(*args)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


@dataclass
class Lab:
    """Three namespaces and the addresses inside them; stops what it started at teardown."""

    hub_a: str
    hub_b: str
    redis: str
    net_a: int  # third octet of hub-a's link: 10.250.net_a.0/24
    net_b: int
    cleanups: list[Callable[[], object]] = field(default_factory=list)

    @property
    def redis_for_a(self) -> str:
        return f"10.250.{self.net_a}.1"

    @property
    def redis_for_b(self) -> str:
        return f"10.250.{self.net_b}.1"

    @property
    def addr_a(self) -> str:
        return f"10.250.{self.net_a}.2"

    @property
    def addr_b(self) -> str:
        return f"10.250.{self.net_b}.2"

    @staticmethod
    def exec_in(namespace: str) -> list[str]:
        return ["ip", "netns", "exec", namespace]


@pytest.fixture
def lab() -> Iterator[Lab]:
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2's `ip` command (apt-get install -y iproute2)")
    suffix = secrets.token_hex(3)
    probe = _ip("netns", "add", f"hubbub-probe-{suffix}")
    if probe.returncode != 0:
        pytest.skip(
            "cannot create network namespaces (`ip netns add` failed: "
            f"{probe.stderr.strip()}); needs root or CAP_SYS_ADMIN and CAP_NET_ADMIN"
        )
    _ip("netns", "del", f"hubbub-probe-{suffix}")

    net_a, net_b = random.sample(range(1, 255), 2)
    lab = Lab(f"hubbub-a-{suffix}", f"hubbub-b-{suffix}", f"hubbub-r-{suffix}", net_a, net_b)
    created: list[str] = []
    try:
        for namespace in (lab.hub_a, lab.hub_b, lab.redis):
            _ip_checked("netns", "add", namespace)
            created.append(namespace)
            _ip_checked("-n", namespace, "link", "set", "lo", "up")
        # One veth pair per hub, created directly inside the namespaces (never in the host's).
        for tag, hub, net in (("a", lab.hub_a, net_a), ("b", lab.hub_b, net_b)):
            hub_if, redis_if = f"hh{tag}{suffix}", f"hr{tag}{suffix}"
            _ip_checked("link", "add", hub_if, "netns", hub, "type", "veth", "peer", "name", redis_if, "netns", lab.redis)  # fmt: skip
            _ip_checked("-n", hub, "addr", "add", f"10.250.{net}.2/24", "dev", hub_if)
            _ip_checked("-n", lab.redis, "addr", "add", f"10.250.{net}.1/24", "dev", redis_if)
            _ip_checked("-n", hub, "link", "set", hub_if, "up")
            _ip_checked("-n", lab.redis, "link", "set", redis_if, "up")
        yield lab
    finally:
        for cleanup in reversed(lab.cleanups):
            cleanup()
        for namespace in reversed(created):
            _ip("netns", "del", namespace)


def _start_redis(lab: Lab, workdir: Path) -> JsonLines:
    """redis-server in the redis namespace, listening on both link addresses; waits for its
    ``Ready to accept connections`` line."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [
        *lab.exec_in(lab.redis), REDIS_SERVER,
        "--port", str(REDIS_PORT),
        "--bind", lab.redis_for_a, lab.redis_for_b, "127.0.0.1",
        "--protected-mode", "no",
        "--save", "", "--appendonly", "no",
        "--dir", str(workdir),
    ]  # fmt: skip
    redis = JsonLines(cmd, cwd=workdir)
    lab.cleanups.append(redis.stop)
    redis.wait_for_line("Ready to accept connections", timeout=15)
    return redis


def _start_hub(lab: Lab, namespace: str, redis_addr: str, prefix: str) -> RunningProcess:
    cmd = [
        *lab.exec_in(namespace), sys.executable, "-m", "hubbub.cluster", "run",
        "--host", "0.0.0.0", "--port", str(HUB_PORT), "--workers", "2",
        "--broker", f"redis://{redis_addr}:{REDIS_PORT}/0", "--broker-prefix", prefix,
        "--app", "cluster_app:app", "--auth-key", "multihost-test-key",
    ]  # fmt: skip
    hub = start_process(cmd, cwd=CLUSTER_APP_DIR)
    lab.cleanups.append(hub.stop)
    return hub


def _redis_ping(lab: Lab, namespace: str, redis_addr: str) -> str:
    result = subprocess.run(
        [*lab.exec_in(namespace), REDIS_CLI, "-h", redis_addr, "-p", str(REDIS_PORT), "ping"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return result.stdout.strip() or result.stderr.strip()


def _connect_error(lab: Lab, namespace: str, address: str, port: int) -> str:
    """Try a TCP connection from ``namespace`` to ``address:port`` (an address inside our
    namespaces); the error's name, or ``connected``."""
    code = (
        "import errno, json, socket, sys\n"
        "try:\n"
        "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()\n"
        "    print(json.dumps('connected'))\n"
        "except OSError as exc:\n"
        "    print(json.dumps(errno.errorcode.get(exc.errno or 0, type(exc).__name__)))\n"
    )
    result = subprocess.run(
        [*lab.exec_in(namespace), sys.executable, "-c", code, address, str(port)],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return str(json.loads(result.stdout))


@pytest.mark.timeout(150)
def test_two_hosts_sharing_only_redis_deliver_to_each_others_clients(
    lab: Lab, children: Children, tmp_path: Path
) -> None:
    require_node()
    prefix = f"mh{secrets.token_hex(4)}:"
    _start_redis(lab, tmp_path / "redis")
    assert _redis_ping(lab, lab.hub_a, lab.redis_for_a) == "PONG"
    assert _redis_ping(lab, lab.hub_b, lab.redis_for_b) == "PONG"

    hub_a = _start_hub(lab, lab.hub_a, lab.redis_for_a, prefix)
    hub_b = _start_hub(lab, lab.hub_b, lab.redis_for_b, prefix)
    url_a = f"ws://{lab.addr_a}:{hub_a.port}/socketcluster/"
    url_b = f"ws://{lab.addr_b}:{hub_b.port}/socketcluster/"

    # The hosts share nothing but Redis: neither can even route to the other.
    assert _connect_error(lab, lab.hub_b, lab.addr_a, hub_a.port) == "ENETUNREACH"
    assert _connect_error(lab, lab.hub_a, lab.addr_b, hub_b.port) == "ENETUNREACH"

    # Subscriber on host A, publisher on host B ...
    done, published = deliver_in_order(
        children,
        subscribe_url=url_a,
        publish_urls=[url_b],
        count=MESSAGES,
        subscriber_prefix=lab.exec_in(lab.hub_a),
        publisher_prefix=lab.exec_in(lab.hub_b),
    )
    assert published["count"] == MESSAGES
    assert done["ready_pid"] not in published["pids"]
    latencies = sorted(done["latencies_ms"])
    print(
        f"\nhost B -> Redis -> host A: {MESSAGES} messages in order; latency median "
        f"{statistics.median(latencies):.2f} ms, max {latencies[-1]:.2f} ms"
    )
    # ... and the other way round.
    deliver_in_order(
        children,
        subscribe_url=url_b,
        publish_urls=[url_a],
        count=MESSAGES,
        subscriber_prefix=lab.exec_in(lab.hub_b),
        publisher_prefix=lab.exec_in(lab.hub_a),
    )
    for hub in (hub_a, hub_b):
        assert hub.proc.poll() is None, "\n".join(hub.lines[-40:])
