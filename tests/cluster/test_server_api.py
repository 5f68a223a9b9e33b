"""The HTTP server API over real HTTP against ``hubbub run --workers 2`` with Redis.

Every method, the error answers, the cross-worker operations (disconnect and unsubscribe by user,
channels, info), idempotent publishes, the metrics and the API's own listener.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio

from hubbub.client import Client, Disconnected, KickedOut

from ..conftest import RedisCluster, RedisProcess
from .api_helpers import KEY, api_base, call, result
from .conftest import Cluster, ClusterFactory, ahttp_get, client_on_worker, poll

pytestmark = [pytest.mark.redis, pytest.mark.trio]


def _name() -> str:
    return f"api-{uuid.uuid4().hex[:8]}"


def _start(hubbub_cluster: ClusterFactory, redis: RedisProcess, prefix: str, *extra: str) -> Cluster:
    return hubbub_cluster(
        "--broker", redis.url, "--broker-prefix", prefix, "--api-key", KEY, "--metrics-port", "0",
        "--node-ttl", "2", *extra,
    )  # fmt: skip


async def _receive(messages: Any, timeout: float = 5.0) -> Any:
    with trio.fail_after(timeout):
        return await messages.receive()


async def _login(client: Client, user: str) -> None:
    await client.invoke("login", user)
    await client.wait_authenticated(5)


async def _user(
    stack: AsyncExitStack, cluster: Cluster, user: str, avoid: int | None = None, **options: Any
) -> tuple[Client, int]:
    """A client logged in as ``user``, on a worker other than ``avoid``: (client, worker pid)."""
    client, pid = await stack.enter_async_context(
        client_on_worker(cluster.url, avoid={avoid} if avoid else None, **options)
    )
    await _login(client, user)
    return client, pid


async def test_error_answers(hubbub_cluster: ClusterFactory, redis_server: RedisProcess, prefix: str) -> None:
    cluster = _start(hubbub_cluster, redis_server, prefix)
    base = cluster.http
    ok = {"channel": "c", "data": 1}

    # The key: missing, wrong, or as Authorization: apikey.
    assert (await call(base, "publish", ok, key=None))[0] == 401
    assert (await call(base, "publish", ok, key="wrong"))[0] == 401
    assert (await call(base, "publish", ok, key=""))[0] == 401
    status, answer = await call(base, "publish", ok, key=None, headers={"Authorization": f"apikey {KEY}"})
    assert (status, answer) == (200, {"result": {}})
    assert (await call(base, "publish", ok, key=None, headers={"Authorization": f"Bearer {KEY}"}))[0] == 401

    # A body that is not JSON, or not an object, or a field of the wrong type: 400 naming it.
    status, answer = await call(base, "publish", body=b'{"channel": "c", "data": ')
    assert status == 400 and answer["error"]["code"] == 107
    assert "not JSON" in answer["error"]["message"]
    status, answer = await call(base, "publish", body=b"[1, 2]")
    assert status == 400 and "expected an object" in answer["error"]["message"]
    status, answer = await call(base, "publish", {"channel": 7, "data": 1})
    assert (
        status == 400
        and answer["error"]["message"] == "bad request: channel: expected a string, got a number"
    )
    status, answer = await call(base, "history", {"channel": "c", "since": {"offset": "x"}})
    assert status == 400 and "since.offset: expected an integer" in answer["error"]["message"]
    status, answer = await call(base, "broadcast", {"channels": ["a", 2], "data": 1})
    assert status == 400 and "channels[1]: expected a string" in answer["error"]["message"]
    status, answer = await call(base, "batch", {"commands": [{"publish": {"channel": []}}]})
    assert status == 400 and "commands[0].publish.channel" in answer["error"]["message"]
    status, answer = await call(base, "publish", body=b'{"channel": "c", "data": NaN}')
    assert status == 400

    # A missing value is an error of the call (200, code 107), as Centrifugo answers it.
    assert await call(base, "publish", {"data": 1}) == (
        200,
        {"error": {"code": 107, "message": "bad request: channel is required"}},
    )
    assert (await call(base, "publish", {"channel": "c"}))[1]["error"]["code"] == 107
    assert (await call(base, "publish", {"channel": "c", "b64data": "%%%"}))[1]["error"]["code"] == 107
    # The server's own channels are nobody else's.
    assert (await call(base, "publish", {"channel": "\x00hubbub:control", "data": 1}))[1]["error"][
        "code"
    ] == 102

    # Unknown method: 404; another HTTP method: 405.
    status, answer = await call(base, "subscribe_everyone", {})
    assert status == 404 and answer["error"]["code"] == 104
    status, _ = await trio.to_thread.run_sync(_request, cluster.http, "GET", "/api/publish")
    assert status == 405

    # An oversized body: 413, before it is read.
    big = json.dumps({"channel": "c", "data": "x" * (1 << 20)}).encode()
    status, answer = await call(base, "publish", body=big)
    assert status == 413, answer

    # Presence does not exist yet: a clear "not available".
    status, answer = await call(base, "presence", {"channel": "c"})
    assert answer["error"]["code"] == 108 and "no presence" in answer["error"]["message"]
    assert (await call(base, "presence_stats", {"channel": "c"}))[1]["error"]["code"] == 108

    # The OpenAPI document is served without a key.
    status, text = await trio.to_thread.run_sync(_request, cluster.http, "GET", "/api/openapi.json")
    assert status == 200 and json.loads(text)["openapi"].startswith("3.")

    # Every call is counted by method and result, on the worker that answered it.
    counts = await _api_counts(cluster)
    assert counts[("publish", "unauthorized")] == 4
    assert counts[("publish", "bad_request")] >= 6
    assert counts[("publish", "ok")] == 1
    assert counts[("publish", "unknown_channel")] == 1
    assert counts[("unknown", "not_found")] == 1
    assert counts[("presence", "not_available")] == 1
    assert counts[("publish", "too_large")] == 1


def _request(base: str, method: str, path: str) -> tuple[int, str]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


async def _api_counts(cluster: Cluster) -> dict[tuple[str, str], float]:
    """``hubbub_api_calls`` summed over the workers, by (method, result)."""
    counts: dict[tuple[str, str], float] = {}
    pattern = re.compile(r'hubbub_api_calls_total\{method="([^"]+)",result="([^"]+)",worker="\d+"\} (\S+)')
    assert len(cluster.status) == 2
    for url in cluster.status.values():
        status, text = await ahttp_get(url + "/metrics")
        assert status == 200
        for method, outcome, value in pattern.findall(text):
            counts[method, outcome] = counts.get((method, outcome), 0) + float(value)
    return counts


async def test_publish_broadcast_and_batch_reach_both_workers(
    hubbub_cluster: ClusterFactory, redis_server: RedisProcess, prefix: str
) -> None:
    cluster = _start(hubbub_cluster, redis_server, prefix)
    base = cluster.http
    one, two = _name(), _name()
    async with (
        client_on_worker(cluster.url) as (first, first_pid),
        client_on_worker(cluster.url, avoid={first_pid}) as (second, _),
        first.subscribe(one) as first_one,
        second.subscribe(one) as second_one,
        second.subscribe(two) as second_two,
    ):
        for channel in (first_one, second_one, second_two):
            await channel.wait_subscribed(5)
        assert await result(base, "publish", {"channel": one, "data": {"text": "hi"}}) == {}
        assert await _receive(first_one) == {"text": "hi"}
        assert await _receive(second_one) == {"text": "hi"}

        answer = await result(base, "broadcast", {"channels": [one, two, ""], "data": [1, 2]})
        assert answer["responses"][:2] == [{"result": {}}, {"result": {}}]
        assert answer["responses"][2]["error"]["code"] == 107
        assert await _receive(first_one) == [1, 2]
        assert await _receive(second_one) == [1, 2]
        assert await _receive(second_two) == [1, 2]

        # Binary data from b64data reaches a JSON client as sc-formatter's base64 object.
        assert await result(base, "publish", {"channel": two, "b64data": "AAEC"}) == {}
        assert await _receive(second_two) == {"base64": True, "data": "AAEC"}

        status, answer = await call(
            base,
            "batch",
            {
                "commands": [
                    {"publish": {"channel": one, "data": "batched"}},
                    {"broadcast": {"channels": [two], "data": "both"}},
                    {"presence": {"channel": one}},
                    {"no_such_method": {}},
                ]
            },
        )
        assert status == 200
        replies = answer["replies"]
        assert replies[0] == {"publish": {}}
        assert replies[1] == {"broadcast": {"responses": [{"result": {}}]}}
        assert replies[2]["error"]["code"] == 108
        assert replies[3]["error"]["code"] == 104
        assert await _receive(first_one) == "batched"
        assert await _receive(second_two) == "both"


async def test_idempotent_publish_is_published_once(
    hubbub_cluster: ClusterFactory, redis_server: RedisProcess, prefix: str
) -> None:
    cluster = _start(hubbub_cluster, redis_server, prefix)
    base = cluster.http
    channel = _name()
    async with client_on_worker(cluster.url) as (client, _), client.subscribe(channel) as messages:
        await messages.wait_subscribed(5)
        request = {"channel": channel, "data": "once", "idempotency_key": "k1"}
        answers = [await call(base, "publish", request) for _ in range(4)]  # new connections: any worker
        assert all(answer == (200, {"result": {}}) for answer in answers), answers
        # The same key on another channel is another publish.
        other = _name()
        assert await result(base, "publish", {"channel": other, "data": 1, "idempotency_key": "k1"}) == {}
        await result(base, "publish", {"channel": channel, "data": "marker"})
        assert await _receive(messages) == "once"
        assert await _receive(messages) == "marker"  # nothing in between: published once


async def test_channels_and_info_cover_the_cluster(
    hubbub_cluster: ClusterFactory, redis_server: RedisProcess, prefix: str
) -> None:
    cluster = _start(hubbub_cluster, redis_server, prefix)
    base = cluster.http
    shared, lone = _name(), _name()
    async with AsyncExitStack() as stack:
        first, first_pid = await _user(stack, cluster, "alice")
        second, second_pid = await _user(stack, cluster, "bob", first_pid)
        third, _ = await _user(stack, cluster, "alice", second_pid)
        for client, channel in ((first, shared), (second, shared), (third, shared), (second, lone)):
            handle = await stack.enter_async_context(client.subscribe(channel))
            await handle.wait_subscribed(5)

        channels = (await result(base, "channels", {}))["channels"]
        assert channels == {shared: {"num_clients": 3}, lone: {"num_clients": 1}}
        assert (await result(base, "channels", {"pattern": shared[:6] + "*"}))["channels"].keys() >= {shared}
        assert (await result(base, "channels", {"pattern": lone}))["channels"] == {lone: {"num_clients": 1}}
        assert (await result(base, "channels", {"pattern": "nothing-*"}))["channels"] == {}

        async def both_workers_counted() -> list[dict[str, Any]] | None:
            nodes = (await result(base, "info", {}))["nodes"]
            by_pid = {node["pid"]: node for node in nodes}
            wanted = {first_pid: (2, 1, 1, 2), second_pid: (1, 1, 2, 2)}
            seen = {
                pid: (node["num_clients"], node["num_users"], node["num_channels"], node["num_subs"])
                for pid, node in by_pid.items()
            }
            return nodes if seen == wanted else None

        nodes = await poll(both_workers_counted, "info with both workers' counts", timeout=10)
        assert len({node["uid"] for node in nodes}) == 2
        assert {node["worker"] for node in nodes} == {0, 1}
        for node in nodes:
            assert node["version"] and node["host"] and node["uptime"] >= 0
            assert node["name"] == f"{node['host']}:{node['pid']}"


async def test_a_dead_worker_leaves_info_within_the_node_ttl(
    hubbub_cluster: ClusterFactory, redis_server: RedisProcess, prefix: str
) -> None:
    cluster = _start(hubbub_cluster, redis_server, prefix)
    base = cluster.http

    async def two_nodes() -> list[dict[str, Any]] | None:
        nodes = (await result(base, "info", {}))["nodes"]
        return nodes if len(nodes) == 2 else None

    nodes = await poll(two_nodes, "two nodes in info", timeout=10)
    victim = nodes[0]
    os.kill(victim["pid"], signal.SIGKILL)
    started = trio.current_time()

    async def gone() -> bool:
        uids = {node["uid"] for node in (await result(base, "info", {}))["nodes"]}
        return victim["uid"] not in uids

    await poll(gone, "the killed worker's record gone", timeout=10)
    assert trio.current_time() - started < 2 + 1.5  # node_ttl, and a margin for the polls
    # Its restarted successor shows up with a new id.
    nodes = await poll(two_nodes, "the restarted worker in info", timeout=15)
    assert victim["uid"] not in {node["uid"] for node in nodes}


async def test_disconnect_by_user_reaches_every_worker(
    hubbub_cluster: ClusterFactory, redis_server: RedisProcess, prefix: str
) -> None:
    cluster = _start(hubbub_cluster, redis_server, prefix)
    base = cluster.http
    async with AsyncExitStack() as stack:
        alice1, pid_a = await _user(stack, cluster, "alice", auto_reconnect=False)
        alice2, pid_b = await _user(stack, cluster, "alice", pid_a, auto_reconnect=False)
        alice3, _ = await _user(stack, cluster, "alice", pid_b, auto_reconnect=False)
        bob, _ = await _user(stack, cluster, "bob", pid_b, auto_reconnect=False)
        opened = {
            client: await stack.enter_async_context(client.events())
            for client in (alice1, alice2, alice3, bob)
        }

        async def closed(client: Client) -> Disconnected:
            with trio.fail_after(5):
                async for event in opened[client]:
                    if isinstance(event, Disconnected):
                        return event
            raise AssertionError("no Disconnected event")

        # Every connection of alice but the whitelisted one, on both workers, with the code and reason.
        request = {"user": "alice", "whitelist": [alice3.id], "disconnect": {"code": 4601, "reason": "bye"}}
        assert await result(base, "disconnect", request) == {}
        for client in (alice1, alice2):
            event = await closed(client)
            assert (event.code, event.reason) == (4601, "bye")
        # The others are still there (alice3 shares alice1's worker, which acted on the same message).
        assert (await alice3.invoke("worker"))["pid"] == pid_a
        assert (await bob.invoke("worker"))["pid"] == pid_a

        # One connection by its id; the default code tells the official client not to reconnect.
        assert await result(base, "disconnect", {"user": "alice", "client": alice3.id}) == {}
        event = await closed(alice3)
        assert (event.code, event.reason) == (4500, "Disconnected by the server")
        await bob.invoke("worker")

        _, answer = await call(base, "disconnect", {"user": "bob", "disconnect": {"code": 1006}})
        assert answer["error"]["code"] == 107 and "disconnect.code" in answer["error"]["message"]
        assert (await call(base, "disconnect", {}))[1]["error"]["code"] == 107


async def test_unsubscribe_by_user_reaches_every_worker(
    hubbub_cluster: ClusterFactory, redis_server: RedisProcess, prefix: str
) -> None:
    cluster = _start(hubbub_cluster, redis_server, prefix)
    base = cluster.http
    room, other = _name(), _name()
    async with AsyncExitStack() as stack:
        alice1, pid_a = await _user(stack, cluster, "alice")
        alice2, _ = await _user(stack, cluster, "alice", pid_a)
        bob, _ = await _user(stack, cluster, "bob")
        events = {client: await stack.enter_async_context(client.events()) for client in (alice1, alice2)}
        rooms = {}
        for client in (alice1, alice2, bob):
            rooms[client] = await stack.enter_async_context(client.subscribe(room))
            await rooms[client].wait_subscribed(5)
        others = {}
        for client in (alice1, alice2):
            others[client] = await stack.enter_async_context(client.subscribe(other))
            await others[client].wait_subscribed(5)

        async def kicked(client: Client, channel: str) -> None:
            with trio.fail_after(5):
                async for event in events[client]:
                    if isinstance(event, KickedOut) and event.channel == channel:
                        return

        assert await result(base, "unsubscribe", {"user": "alice", "channel": room}) == {}
        await kicked(alice1, room)
        await kicked(alice2, room)
        channels = (await result(base, "channels", {}))["channels"]
        assert channels == {room: {"num_clients": 1}, other: {"num_clients": 2}}
        await result(base, "publish", {"channel": room, "data": "for bob"})
        assert await _receive(rooms[bob]) == "for bob"
        await result(base, "publish", {"channel": other, "data": "still"})
        assert await _receive(others[alice1]) == "still"
        assert await _receive(others[alice2]) == "still"

        # No channel: every channel of the user.
        assert await result(base, "unsubscribe", {"user": "alice"}) == {}
        await kicked(alice1, other)
        await kicked(alice2, other)
        assert (await result(base, "channels", {}))["channels"] == {room: {"num_clients": 1}}


async def test_api_port_serves_the_api_alone(
    hubbub_cluster: ClusterFactory, redis_server: RedisProcess, prefix: str
) -> None:
    cluster = _start(hubbub_cluster, redis_server, prefix, "--api-port", "0")
    base = api_base(cluster)
    assert base != cluster.http
    channel = _name()
    async with client_on_worker(cluster.url) as (client, _), client.subscribe(channel) as messages:
        await messages.wait_subscribed(5)
        assert await result(base, "publish", {"channel": channel, "data": "via the api port"}) == {}
        assert await _receive(messages) == "via the api port"
    try:
        status, _ = await call(cluster.http, "publish", {"channel": channel, "data": 1})
    except http.client.RemoteDisconnected:
        status = 0
    assert status != 200  # the main port does not serve the API
    status, _ = await trio.to_thread.run_sync(_request, cluster.http, "GET", "/api/openapi.json")
    assert status != 200
    assert (await call(base, "info", {}, key="nope"))[0] == 401


def _history_config(tmp_path: Path) -> str:
    path = tmp_path / "hubbub.toml"
    path.write_text('[[channels]]\nmatch = "hist/*"\nhistory_size = 5\nhistory_ttl = 60\n')
    return str(path)


async def test_history_over_the_api(
    hubbub_cluster: ClusterFactory, redis_server: RedisProcess, prefix: str, tmp_path: Path
) -> None:
    cluster = _start(hubbub_cluster, redis_server, prefix, "--config", _history_config(tmp_path))
    base = cluster.http
    channel = f"hist/{_name()}"
    async with client_on_worker(cluster.url) as (client, _), client.subscribe(channel) as messages:
        await messages.wait_subscribed(5)
        published = [await result(base, "publish", {"channel": channel, "data": f"m{i}"}) for i in (1, 2, 3)]
        epoch = published[0]["epoch"]
        assert epoch and published == [{"offset": i, "epoch": epoch} for i in (1, 2, 3)]
        assert [await _receive(messages) for _ in range(3)] == ["m1", "m2", "m3"]

        async def history(**request: Any) -> Any:
            return await result(base, "history", {"channel": channel, **request})

        def pubs(answer: Any) -> list[tuple[int, Any]]:
            return [(p["offset"], p["data"]) for p in answer["publications"]]

        assert await history() == {"publications": [], "offset": 3, "epoch": epoch}  # no limit: position
        assert pubs(await history(limit=-1)) == [(1, "m1"), (2, "m2"), (3, "m3")]
        assert pubs(await history(limit=2)) == [(1, "m1"), (2, "m2")]
        assert pubs(await history(limit=2, reverse=True)) == [(3, "m3"), (2, "m2")]
        assert pubs(await history(limit=-1, since={"offset": 1, "epoch": epoch})) == [(2, "m2"), (3, "m3")]
        since_three = {"offset": 3, "epoch": epoch}
        assert pubs(await history(limit=-1, since=since_three, reverse=True)) == [(2, "m2"), (1, "m1")]
        assert pubs(await history(limit=1, since=since_three, reverse=True)) == [(2, "m2")]
        errors = [
            ({"since": {"offset": 0}, "reverse": True, "limit": 1}, 107),
            ({"since": {"offset": 1, "epoch": "not-" + epoch}, "limit": -1}, 112),
            ({"since": {"offset": -1}}, 107),
        ]
        for request, code in errors:
            status, answer = await call(base, "history", {"channel": channel, **request})
            assert status == 200 and answer["error"]["code"] == code, (request, answer)

        # skip_history: delivered, neither stored nor numbered.
        skipped = await result(
            base, "publish", {"channel": channel, "data": "off the record", "skip_history": True}
        )
        assert skipped == {}
        assert await _receive(messages) == "off the record"
        assert (await history(limit=-1))["offset"] == 3

        # history_remove: the publications go, the offsets go on.
        assert await result(base, "history_remove", {"channel": channel}) == {}
        assert await history(limit=-1) == {"publications": [], "offset": 3, "epoch": epoch}
        for i in range(4, 11):
            assert await result(base, "publish", {"channel": channel, "data": f"m{i}"}) == {
                "offset": i,
                "epoch": epoch,
            }
        assert [offset for offset, _ in pubs(await history(limit=-1))] == [6, 7, 8, 9, 10]  # history_size 5
        assert [await _receive(messages) for _ in range(7)] == [f"m{i}" for i in range(4, 11)]

    for method in ("history", "history_remove"):
        status, answer = await call(base, method, {"channel": "plain-channel"})
        assert answer["error"]["code"] == 108 and "keeps no history" in answer["error"]["message"]


async def test_the_cross_worker_methods_on_a_redis_cluster(
    hubbub_cluster: ClusterFactory, redis_cluster: RedisCluster, prefix: str
) -> None:
    cluster = hubbub_cluster(
        "--broker", redis_cluster.url, "--broker-prefix", prefix, "--api-key", KEY, "--node-ttl", "2"
    )  # fmt: skip
    base = cluster.http
    channel = _name()
    async with AsyncExitStack() as stack:
        alice, pid = await _user(stack, cluster, "alice", auto_reconnect=False)
        bob, _ = await _user(stack, cluster, "bob", pid)
        messages = await stack.enter_async_context(bob.subscribe(channel))
        await messages.wait_subscribed(5)
        events = await stack.enter_async_context(alice.events())

        async def two_nodes() -> bool:
            return len((await result(base, "info", {}))["nodes"]) == 2

        await poll(two_nodes, "two node records on the Redis Cluster", timeout=10)
        assert (await result(base, "channels", {}))["channels"] == {channel: {"num_clients": 1}}
        assert await result(base, "publish", {"channel": channel, "data": "sharded"}) == {}
        assert await _receive(messages) == "sharded"
        assert await result(base, "disconnect", {"user": "alice"}) == {}
        with trio.fail_after(5):
            async for event in events:
                if isinstance(event, Disconnected):
                    assert event.code == 4500
                    break
