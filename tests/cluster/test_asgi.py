"""AsgiEndpoint: hubbub's protocol on a path of an ASGI app, served by uvicorn (asyncio, uvloop) and hypercorn (trio).

docs/asyncio.md's one-port FastAPI example runs as written: the official client subscribes on
the web app's port and receives what an HTTP route publishes; the Python client invokes,
publishes and receives its share of a fan-out in order. An endpoint with tight limits
(tests/cluster/asgi_app.py) refuses upgrades with socketcluster-server's answers, closes a client
that sends too much with 1009 and one that reads too little as a slow consumer.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trio
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect
from websockets.typing import Origin

import hubbub.client
from hubbub.cluster._transport.http import HttpRequest
from hubbub.protocol import CloseCode

ROOT = Path(__file__).resolve().parents[2]
INTEROP = ROOT / "tests" / "interop"
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import RedisProcess, free_port, official_subscriber, stalled_subscriber, wait_until  # noqa: E402

from ..hostile.test_flow_control import flood_past_a_slower_and_a_stalled_subscriber  # noqa: E402

#: How each ASGI server runs ``module:app`` on ``port``.
SERVERS = {
    "uvicorn-asyncio": lambda target, port: [
        *("-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port), "--loop", "asyncio"),
    ],
    "uvicorn-uvloop": lambda target, port: [
        *("-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop"),
    ],
    "hypercorn-trio": lambda target, port: [
        "-m",
        "hypercorn",
        "-k",
        "trio",
        "-b",
        f"127.0.0.1:{port}",
        target,
    ],
}


@dataclass
class AsgiServer:
    """An ASGI server process serving an app with an AsgiEndpoint on ``/socketcluster/``."""

    proc: subprocess.Popen[str]
    port: int
    #: Where its stdout and stderr go.
    log: Path

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/socketcluster/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def read_output(self) -> str:
        """Everything the server printed so far."""
        return self.log.read_text()


#: ``asgi_server(kind, "module:app", cwd, env=None)``: an ASGI server of ``kind`` (see SERVERS), listening.
StartAsgi = Callable[..., AsgiServer]


@pytest.fixture
def asgi_server(tmp_path: Path) -> Iterator[StartAsgi]:
    started: list[AsgiServer] = []

    def start(kind: str, target: str, cwd: Path, env: dict[str, str] | None = None) -> AsgiServer:
        port = free_port()
        log_path = tmp_path / f"{kind}-{port}.log"
        with log_path.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, *SERVERS[kind](target, port)],
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env={**os.environ, **(env or {})},
            )
        server = AsgiServer(proc, port, log_path)
        started.append(server)
        wait_until(lambda: _accepts(port) or proc.poll() is not None, f"{kind} listening", timeout=20)
        assert proc.poll() is None, server.read_output()
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.terminate()
            try:
                server.proc.wait(10)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait(5)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _one_port_example(tmp_path: Path) -> Path:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "asyncio.md").read_text(), re.S)
    (source,) = [b for b in blocks if b.startswith("# one_port.py")]
    (tmp_path / "one_port.py").write_text(source)
    return tmp_path


@pytest.mark.interop
@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_official_client_on_the_web_apps_port_receives_what_a_route_publishes(
    kind: str, tmp_path: Path, asgi_server: StartAsgi
) -> None:
    server = asgi_server(kind, "one_port:api", _one_port_example(tmp_path))
    assert httpx.get(f"{server.http_url}/socketcluster/", timeout=5).status_code == 426
    with official_subscriber(server.ws_url, "room/lobby", count=2) as next_event:
        for text in ("hello from HTTP", "and again"):
            answer = httpx.post(f"{server.http_url}/rooms/lobby/messages", json={"text": text}, timeout=5)
            assert answer.status_code == 200, answer.text
            assert next_event() == {"event": "message", "data": {"text": text}}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["uvicorn-asyncio", "hypercorn-trio"])
def test_status_paths_are_answered_under_the_mount(kind: str, tmp_path: Path, asgi_server: StartAsgi) -> None:
    """/health and /ready under the endpoint's path, for a web app's probes; details stay private."""
    mounted = asgi_server(kind, "one_port:api", _one_port_example(tmp_path))
    top_level = asgi_server(kind, "asgi_app:endpoint", HERE)
    for base in (f"{mounted.http_url}/socketcluster", top_level.http_url):
        health = httpx.get(f"{base}/health", timeout=5)
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        ready = httpx.get(f"{base}/ready", timeout=5)
        assert (ready.status_code, ready.json()) == (200, {"ready": True})
        assert httpx.get(f"{base}/metrics", timeout=5).status_code == 426  # public_metrics is off
        assert httpx.get(f"{base}/", timeout=5).status_code == 426


@pytest.mark.timeout(60)
def test_debug_frames_through_the_endpoint_are_tagged_with_the_socket_id(asgi_server: StartAsgi) -> None:
    server = asgi_server("uvicorn-asyncio", "asgi_app:endpoint", HERE, {"HUBBUB_TEST_FRAMES": "1"})
    with hubbub.client.connect_blocking(server.ws_url) as client:
        assert client.invoke("closes", timeout=10) == []

    def traced() -> list[str]:
        return [line for line in server.read_output().splitlines() if "hubbub.frames: socket " in line]

    wait_until(lambda: any('"rid"' in line for line in traced()), "the traced answer", 10)
    ids = {line.split("hubbub.frames: socket ", 1)[1].split(" ", 1)[0].rstrip(":") for line in traced()}
    assert len(ids) == 1, traced()
    (socket_id,) = ids
    assert any(f"socket {socket_id} <- " in line and "#handshake" in line for line in traced())
    assert any(f"socket {socket_id} <- " in line and '"closes"' in line for line in traced())
    assert any(f"socket {socket_id} -> " in line and '"rid"' in line for line in traced())
    assert all(line.startswith("DEBUG ") for line in traced())


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_python_clients_invoke_publish_and_each_receive_their_channel_in_order(
    kind: str, tmp_path: Path, asgi_server: StartAsgi
) -> None:
    server = asgi_server(kind, "one_port:api", _one_port_example(tmp_path))
    per_channel, subscribers = 50, 8

    async def main() -> dict[str, list[list[object]]]:
        received: dict[str, list[list[object]]] = {"a": [], "b": []}
        async with hubbub.client.connect(server.ws_url) as publisher:
            assert await publisher.invoke("echo", {"n": [1, 2]}) == {"n": [1, 2]}
            async with trio.open_nursery() as nursery:
                ready = trio.Semaphore(0)

                async def subscriber(channel: str) -> None:
                    got: list[object] = []
                    received[channel].append(got)
                    async with (
                        hubbub.client.connect(server.ws_url) as client,
                        client.subscribe(channel) as subscription,
                    ):
                        await subscription.wait_subscribed(10)
                        ready.release()
                        async for message in subscription:
                            got.append(message)
                            if len(got) == per_channel:
                                return

                for index in range(subscribers):
                    nursery.start_soon(subscriber, "ab"[index % 2])
                with trio.fail_after(20):
                    for _ in range(subscribers):
                        await ready.acquire()
                    for index in range(per_channel):  # interleaved: each frame differs from the last
                        await publisher.publish("a", {"a": index})
                        await publisher.publish("b", {"b": index})
        return received

    received = trio.run(main)
    for channel in "ab":
        assert len(received[channel]) == subscribers // 2
        for got in received[channel]:
            assert got == [{channel: index} for index in range(per_channel)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["uvicorn-asyncio", "hypercorn-trio"])
def test_refused_upgrades_get_socketcluster_servers_answers(kind: str, asgi_server: StartAsgi) -> None:
    server = asgi_server(kind, "asgi_app:endpoint", HERE)
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(server.ws_url, origin=Origin("http://evil.example"), open_timeout=5)
    assert refused.value.response.status_code == 403
    assert b"Invalid origin: http://evil.example" in refused.value.response.body
    with pytest.raises(InvalidStatus) as denied:
        ws_connect(server.ws_url + "?deny=1", origin=Origin("http://allowed.example"), open_timeout=5)
    assert denied.value.response.status_code == 401
    assert b"denied by the test middleware" in denied.value.response.body
    with ws_connect(server.ws_url, origin=Origin("http://allowed.example"), open_timeout=5) as ws:
        ws.send(json.dumps({"event": "#handshake", "data": {}, "cid": 1}))
        assert json.loads(ws.recv(5))["rid"] == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["uvicorn-asyncio", "hypercorn-trio"])
def test_a_message_over_max_payload_closes_with_1009(kind: str, asgi_server: StartAsgi) -> None:
    server = asgi_server(kind, "asgi_app:endpoint", HERE)
    with ws_connect(server.ws_url, origin=Origin("http://allowed.example"), open_timeout=5) as ws:
        ws.send(json.dumps({"event": "#handshake", "data": {}, "cid": 1}))
        assert json.loads(ws.recv(5))["rid"] == 1
        ws.send(json.dumps({"event": "big", "data": "x" * 40_000}))
        with pytest.raises(ConnectionClosed) as closed:
            _read_until_closed(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def _read_until_closed(ws: ClientConnection) -> None:
    while True:
        ws.recv(5)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["uvicorn-asyncio", "hypercorn-trio"])
def test_a_subscriber_that_stops_reading_is_dropped_as_a_slow_consumer(
    kind: str, asgi_server: StartAsgi
) -> None:
    server = asgi_server(kind, "asgi_app:endpoint", HERE)
    stalled = stalled_subscriber(server.ws_url, "flood")
    with stalled, hubbub.client.connect_blocking(server.ws_url) as client:
        channel = client.subscribe("other")
        channel.wait_subscribed(10)
        sent = client.invoke("flood", {"channel": "flood", "count": 200, "size": 32 * 1024}, timeout=30)
        assert sent == 200
        wait_until(
            lambda: client.invoke("closes", timeout=10) == [CloseCode.SLOW_CONSUMER], "a 4010 close", 10
        )
        # The session ends at once; the TCP connection goes when the ASGI server gives up on its
        # close handshake: hypercorn at the endpoint's close_timeout, uvicorn after its own 10 s.
        assert _dropped(stalled, within=25)
        assert client.invoke("flood", {"channel": "other", "count": 1, "size": 1}, timeout=10) == 1
        assert channel.receive(10) == "0:x"  # the worker and its other clients go on


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", ["uvicorn-asyncio", "hypercorn-trio"])
def test_a_client_flood_slows_its_sender_and_drops_only_the_stalled_subscriber(
    kind: str, asgi_server: StartAsgi
) -> None:
    """Flow control on the endpoint: a slower reader gets all, in order; a stalled one gets 4010."""
    server = asgi_server(kind, "asgi_app:endpoint", HERE)
    with (
        flood_past_a_slower_and_a_stalled_subscriber(server.ws_url, "client-flood"),
        hubbub.client.connect_blocking(server.ws_url) as client,
    ):

        def closes() -> list[int]:
            return list(client.invoke("closes", timeout=10))

        wait_until(lambda: CloseCode.SLOW_CONSUMER in closes(), "the 4010 close", 10)
        ended = closes()  # the stalled subscriber's and the publisher's (hypercorn reports 1006 for it)
        assert len(ended) == 2 and ended.count(CloseCode.SLOW_CONSUMER) == 1, ended


@pytest.mark.parametrize("path", ["/socketcluster/", "/"], ids=["root-in-path", "root-left-out"])
def test_the_request_url_of_a_mounted_endpoint_has_the_mount_path_once(path: str) -> None:
    scope = {"path": path, "root_path": "/socketcluster", "query_string": b"a=1", "headers": []}
    assert HttpRequest.from_asgi(scope).path == "/socketcluster/"
    assert HttpRequest.from_asgi({**scope, "raw_path": b"/socketcluster/"}).path == "/socketcluster/"


def _dropped(sock: socket.socket, within: float) -> bool:
    """Whether the server ends ``sock``'s connection (EOF or a reset) within ``within`` seconds."""
    sock.settimeout(within)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            if not sock.recv(1 << 20):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False


@pytest.mark.redis
@pytest.mark.timeout(60)
def test_asgi_processes_on_one_redis_reach_each_others_clients(
    redis_server: RedisProcess, prefix: str, asgi_server: StartAsgi
) -> None:
    env = {"HUBBUB_TEST_BROKER": redis_server.url, "HUBBUB_TEST_PREFIX": prefix}
    on_asyncio = asgi_server("uvicorn-uvloop", "asgi_redis_app:endpoint", HERE, env)
    on_trio = asgi_server("hypercorn-trio", "asgi_redis_app:endpoint", HERE, env)
    count = 100

    async def main() -> list[list[object]]:
        received: list[list[object]] = [[], []]
        async with (
            hubbub.client.connect(on_asyncio.ws_url) as first,
            hubbub.client.connect(on_trio.ws_url) as second,
            first.subscribe("news") as first_news,
            second.subscribe("news") as second_news,
        ):
            with trio.fail_after(20):
                await first_news.wait_subscribed(10)
                await second_news.wait_subscribed(10)
                for index in range(count):  # each process's client publishes half
                    await (first if index % 2 else second).publish("news", index)
                for got, channel in zip(received, (first_news, second_news), strict=True):
                    async for message in channel:
                        got.append(message)
                        if len(got) == count:
                            break
        return received

    for got in trio.run(main):
        assert got == list(range(count))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["uvicorn-asyncio", "hypercorn-trio"])
def test_min_bin_clients_get_binary_frames_through_the_endpoint(kind: str, asgi_server: StartAsgi) -> None:
    server = asgi_server(kind, "asgi_minbin_app:endpoint", HERE)
    count = 20

    async def main() -> tuple[object, list[object], list[object]]:
        async with (
            hubbub.client.connect(server.ws_url, codec="minbin") as publisher,
            hubbub.client.connect(server.ws_url, codec="minbin") as subscriber,
            subscriber.subscribe("a") as on_a,
            subscriber.subscribe("b") as on_b,
        ):
            echoed = await publisher.invoke("echo", {"raw": b"\x00\xff"})
            with trio.fail_after(20):
                await on_a.wait_subscribed(10)
                await on_b.wait_subscribed(10)
                for index in range(count):
                    await publisher.publish("a", {"a": index})
                    await publisher.publish("b", {"b": index, "raw": bytes([index])})
                got_a = [await on_a.receive() for _ in range(count)]
                got_b = [await on_b.receive() for _ in range(count)]
        return echoed, got_a, got_b

    echoed, got_a, got_b = trio.run(main)
    assert echoed == {"raw": b"\x00\xff"}
    assert got_a == [{"a": index} for index in range(count)]
    assert got_b == [{"b": index, "raw": bytes([index])} for index in range(count)]
