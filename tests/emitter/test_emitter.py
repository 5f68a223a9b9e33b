"""hubbub.emitter against real redis-server processes and real brokers (standalone and Redis Cluster).

What the workers' brokers receive from an emitter (``PUBLISH``, ``SPUBLISH`` on a cluster), the
history step shared with the broker (offsets go on from the broker's, no gap and no repeat under
concurrent publishers; ``NOSCRIPT``), the bytes compared with the broker's, a forked child's origin,
and the errors: data that cannot be encoded, bad arguments, an unreachable Redis, refused broadcasts.
"""

from __future__ import annotations

import asyncio
import datetime
import multiprocessing
import re
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import redis.asyncio
import trio

import hubbub.broker._envelope
import hubbub.broker._history_script
from hubbub.broker import (
    ChannelOptions,
    ChannelRule,
    ChannelRules,
    HistoryOptions,
    ManagedBroker,
    StreamPosition,
    open_broker,
)
from hubbub.broker._envelope import decode
from hubbub.emitter import AsyncEmitter, BroadcastError, Emitter, EncodeError

from ..broker.conftest import Collector
from ..broker.test_history import Positioned, history_of, never
from ..conftest import ROOT, RedisCluster, RedisProcess, free_port

pytestmark = pytest.mark.redis

KEEP = HistoryOptions(size=100, ttl=60)
RULES = ChannelRules([ChannelRule("hist/*", ChannelOptions(history_size=100, history_ttl=60))])


@dataclass
class Target:
    """Where the brokers and the emitters of a test meet: standalone Redis or a Redis Cluster."""

    url: str
    port: int
    cluster: bool

    def sync_client(self) -> redis.Redis | redis.RedisCluster:
        if self.cluster:
            return redis.RedisCluster(host="127.0.0.1", port=self.port)
        return redis.Redis(host="127.0.0.1", port=self.port)

    def async_client(self) -> redis.asyncio.Redis | redis.asyncio.RedisCluster:
        if self.cluster:
            return redis.asyncio.RedisCluster(host="127.0.0.1", port=self.port)
        return redis.asyncio.Redis(host="127.0.0.1", port=self.port)


@pytest.fixture(params=["redis", "cluster"])
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "redis":
        server: RedisProcess = request.getfixturevalue("redis_server")
        return Target(server.url, server.port, cluster=False)
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    return Target(cluster.url, cluster.nodes[0].port, cluster=True)


def _names() -> list[str]:
    """Channel names of every kind ChannelNames maps: plain, a hash tag, a lone '}', not ASCII."""
    tag = uuid.uuid4().hex[:8]
    return [f"room/{tag}", f"x{{{tag}}}/y", f"a}}b/{tag}", f"ünï/{tag}"]


async def _in_asyncio(work: Callable[[], Awaitable[Any]]) -> Any:
    """Run an asyncio coroutine function to the end in a thread of its own (the test runs on trio)."""
    return await trio.to_thread.run_sync(lambda: asyncio.run(_ended(work)))


async def _ended(work: Callable[[], Awaitable[Any]]) -> Any:
    return await work()


def _subscribe_all(broker: ManagedBroker, channels: list[str]) -> Any:
    async def run() -> None:
        for channel in channels:
            await broker.subscribe(channel)

    return run()


def test_importing_the_emitter_imports_neither_trio_nor_coredis() -> None:
    code = "import sys, hubbub.emitter; print(sorted({m.split('.')[0] for m in sys.modules} & {'trio', 'coredis'}))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == "[]"


# -- what the workers receive -------------------------------------------------------------------


@pytest.mark.trio
async def test_every_worker_receives_what_the_emitter_publishes_in_order(target: Target, prefix: str) -> None:
    channels = _names()
    collectors = [Collector(), Collector()]
    async with (
        open_broker(target.url, prefix=prefix, worker_id="w0") as first,
        open_broker(target.url, prefix=prefix, worker_id="w1") as second,
    ):
        for broker, collector in zip((first, second), collectors, strict=True):
            broker.attach(collector)
            await _subscribe_all(broker, channels)
        emitter = Emitter(target.sync_client(), prefix=prefix)
        assert emitter.sharded is target.cluster

        def publish_all() -> list[Any]:
            answers: list[Any] = [emitter.publish(channels[0], {"i": i}) for i in range(100)]
            answers.append(emitter.broadcast(channels, {"i": 100}))
            return answers

        answers = await trio.to_thread.run_sync(publish_all)
        assert answers == [None] * 100 + [[None] * len(channels)]
        for collector in collectors:
            got = await collector.wait_count(channels[0], 101)
            assert got == [{"i": i} for i in range(101)]
            for channel in channels[1:]:
                assert await collector.wait_count(channel, 1) == [{"i": 100}]


@pytest.mark.trio
async def test_the_async_emitter_publishes_and_broadcasts_under_asyncio(target: Target, prefix: str) -> None:
    channels = _names()
    collector = Collector()
    async with open_broker(target.url, prefix=prefix) as broker:
        broker.attach(collector)
        await _subscribe_all(broker, channels)

        async def publish_all() -> list[Any]:
            emitter = AsyncEmitter(target.async_client(), prefix=prefix)
            assert emitter.sharded is target.cluster
            answers: list[Any] = [await emitter.publish(channels[0], {"i": i}) for i in range(50)]
            answers.append(await emitter.broadcast(channels, {"i": 50}))
            answers.append(await emitter.broadcast([], {"i": 51}))
            await emitter.client.aclose()
            return answers

        answers = await _in_asyncio(publish_all)
        assert answers == [None] * 50 + [[None] * len(channels), []]
        assert await collector.wait_count(channels[0], 51) == [{"i": i} for i in range(51)]
        for channel in channels[1:]:
            assert await collector.wait_count(channel, 1) == [{"i": 50}]


# -- history: the broker's step, shared ----------------------------------------------------------


@pytest.mark.trio
async def test_history_offsets_go_on_from_the_brokers_with_every_emitter(target: Target, prefix: str) -> None:
    channel, plain = f"hist/{uuid.uuid4().hex[:8]}", f"room/{uuid.uuid4().hex[:8]}"
    positioned = Positioned()
    async with open_broker(target.url, prefix=prefix) as opened:
        broker = history_of(opened)
        broker.attach_history(positioned, never)
        await opened.subscribe(channel)
        first = [await broker.publish_history(channel, i, KEEP) for i in range(2)]
        epoch = first[0].epoch
        emitter = Emitter(target.sync_client(), prefix=prefix, channels=RULES)
        from_sync = await trio.to_thread.run_sync(lambda: [emitter.publish(channel, i) for i in (2, 3)])

        async def publish_async() -> list[Any]:
            emitter = AsyncEmitter(target.async_client(), prefix=prefix, channels=RULES)
            answers = [await emitter.publish(channel, 4), await emitter.broadcast([channel, plain], 5)]
            await emitter.client.aclose()
            return answers

        from_async = await _in_asyncio(publish_async)
        last = await broker.publish_history(channel, 6, KEEP)
        assert first == [StreamPosition(1, epoch), StreamPosition(2, epoch)]
        assert from_sync == [StreamPosition(3, epoch), StreamPosition(4, epoch)]
        assert from_async == [StreamPosition(5, epoch), [StreamPosition(6, epoch), None]]
        assert last == StreamPosition(7, epoch)
        delivered = await positioned.wait_count(channel, 7)
        assert delivered == [(i, i + 1, epoch) for i in range(7)]
        page = await broker.history(channel, KEEP)
        assert [(entry.offset, entry.data) for entry in page.entries] == [(i + 1, i) for i in range(7)]


@pytest.mark.trio
async def test_concurrent_broker_and_emitter_publishes_get_every_offset_once(
    target: Target, prefix: str
) -> None:
    channel, count = f"hist/{uuid.uuid4().hex[:8]}", 300
    positioned = Positioned()
    async with open_broker(target.url, prefix=prefix) as opened:
        broker = history_of(opened)
        broker.attach_history(positioned, never)
        await opened.subscribe(channel)
        emitter = Emitter(target.sync_client(), prefix=prefix, channels=RULES)
        offsets: dict[str, list[int]] = {"broker": [], "emitter": []}

        async def from_broker() -> None:
            for i in range(count):
                offsets["broker"].append((await broker.publish_history(channel, ("b", i), KEEP)).offset)

        def from_emitter() -> None:
            for i in range(count):
                position = emitter.publish(channel, ("e", i))
                assert position is not None
                offsets["emitter"].append(position.offset)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(from_broker)
            nursery.start_soon(trio.to_thread.run_sync, from_emitter)
        assert sorted(offsets["broker"] + offsets["emitter"]) == list(range(1, 2 * count + 1))
        for mine in offsets.values():
            assert mine == sorted(mine)
        delivered = await positioned.wait_count(channel, 2 * count)
        assert [offset for _, offset, _ in delivered] == list(range(1, 2 * count + 1))
        for origin in ("b", "e"):
            assert [data[1] for data, _, _ in delivered if data[0] == origin] == list(range(count))


@pytest.mark.trio
async def test_the_script_flushed_from_redis_is_run_by_eval(
    own_redis_server: RedisProcess, prefix: str
) -> None:
    client = redis.Redis(port=own_redis_server.port)
    emitter = Emitter(client, prefix=prefix, channels=RULES)
    one, two = "hist/one", "hist/two"
    client.script_flush()
    first = emitter.publish(one, 1)
    assert first is not None and first.offset == 1
    assert client.script_exists(hubbub.broker._history_script.PUBLISH.sha) == [True]  # EVAL loaded it
    client.script_flush()
    assert emitter.publish(one, 2) == StreamPosition(2, first.epoch)
    client.script_flush()
    positions = emitter.broadcast([one, two], 3)
    assert [p.offset if p else None for p in positions] == [3, 1]
    client.script_flush()

    async def publish_async() -> Any:
        emitter = AsyncEmitter(redis.asyncio.Redis(port=own_redis_server.port), prefix=prefix, channels=RULES)
        answers = [await emitter.publish(one, 4)]
        await emitter.client.script_flush()
        answers.append(await emitter.broadcast([two, one], 5))
        await emitter.client.aclose()
        return answers

    single, broadcast = await _in_asyncio(publish_async)
    assert single.offset == 4
    assert [p.offset for p in broadcast] == [2, 5]
    async with open_broker(own_redis_server.url, prefix=prefix) as opened:
        page = await history_of(opened).history(one, KEEP)
    assert [(entry.offset, entry.data) for entry in page.entries] == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]


# -- the bytes ----------------------------------------------------------------------------------


@pytest.mark.trio
async def test_the_emitters_bytes_are_the_brokers(
    redis_server: RedisProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same publication (same origin, publish id, time and epoch candidate, injected) from the
    broker and from the emitter: what subscribers receive and what the history stores is equal."""
    monkeypatch.setattr(
        hubbub.broker._envelope, "time", SimpleNamespace(time_ns=lambda: 1_718_000_000_123_456_789)
    )
    monkeypatch.setattr(hubbub.broker._history_script, "new_epoch", lambda: "EpOcH-01")
    plain, channel, tag = "room/1", "hist/1", uuid.uuid4().hex[:8]
    client = redis.Redis(port=redis_server.port)
    received: dict[str, list[bytes]] = {}
    for who in ("broker", "emitter"):
        prefix = f"{who}-{tag}:"
        pubsub = client.pubsub()
        pubsub.subscribe(f"{prefix}{plain}".encode(), f"{prefix}{channel}".encode())
        for _ in range(2):
            assert pubsub.get_message(timeout=5)["type"] == "subscribe"
        if who == "broker":
            async with open_broker(redis_server.url, prefix=prefix, worker_id="origin") as opened:
                await opened.publish(plain, {"text": "hi", "n": [1, 2.5, None], "b": b"\x00\xff"})
                assert await history_of(opened).publish_history(channel, "stored", KEEP) == StreamPosition(
                    1, "EpOcH-01"
                )
        else:
            emitter = Emitter(client, prefix=prefix, channels=RULES)
            emitter.origin = "origin"
            assert emitter.publish(plain, {"text": "hi", "n": [1, 2.5, None], "b": b"\x00\xff"}) is None
            assert emitter.publish(channel, "stored") == StreamPosition(1, "EpOcH-01")
        messages = [pubsub.get_message(timeout=5) for _ in range(2)]
        stored = client.xrange(f"{{{prefix}{channel}}}:history".encode())
        received[who] = [message["data"] for message in messages] + [fields[b"m"] for _, fields in stored]
        pubsub.close()
    assert received["emitter"] == received["broker"]
    envelopes = [decode(data) for data in received["broker"]]
    assert [(e.origin, e.publish_id, e.published_ms) for e in envelopes] == [
        ("origin", 0, 1_718_000_000_123),
        ("origin", 1, 1_718_000_000_123),
        ("origin", 1, 1_718_000_000_123),
    ]
    assert (envelopes[0].offset, envelopes[1].offset, envelopes[1].epoch) == (None, 1, "EpOcH-01")


def _publish_in_child(port: int, prefix: str, emitter: Emitter) -> None:
    emitter.publish("room", "child")


def test_a_forked_child_publishes_with_an_origin_of_its_own(redis_server: RedisProcess, prefix: str) -> None:
    client = redis.Redis(port=redis_server.port)
    pubsub = client.pubsub()
    pubsub.subscribe(f"{prefix}room")
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    emitter = Emitter(client, prefix=prefix)
    emitter.publish("room", "parent")
    child = multiprocessing.get_context("fork").Process(
        target=_publish_in_child, args=(redis_server.port, prefix, emitter)
    )
    child.start()
    child.join(20)
    assert child.exitcode == 0
    emitter.publish("room", "parent again")
    envelopes = [decode(pubsub.get_message(timeout=5)["data"]) for _ in range(3)]
    pubsub.close()
    assert [e.payload for e in envelopes] == ["parent", "child", "parent again"]
    parent, forked, again = envelopes
    assert forked.origin != parent.origin == again.origin
    assert (parent.publish_id, forked.publish_id, again.publish_id) == (0, 0, 1)


# -- errors -------------------------------------------------------------------------------------


def _unreachable() -> redis.Redis:
    return redis.Redis(port=free_port(), socket_connect_timeout=1, retry=None)


def _deep(depth: int) -> list[Any]:
    data: list[Any] = []
    for _ in range(depth):
        data = [data]
    return data


@pytest.mark.parametrize(
    "data",
    [object(), {1, 2}, {"when": datetime.datetime(2024, 1, 1)}, _deep(3000)],
    ids=["object", "set", "datetime", "nested-too-deeply"],
)
def test_data_that_cannot_be_encoded_raises_encode_error_before_anything_is_sent(data: Any) -> None:
    emitter = Emitter(_unreachable(), channels=RULES)  # a Redis that is not there: nothing may be sent
    for channel in ("room", "hist/1"):
        with pytest.raises(EncodeError, match=f"cannot publish on '{channel}': the data cannot be encoded"):
            emitter.publish(channel, data)
    with pytest.raises(EncodeError, match="cannot publish on 'hist/1'"):
        emitter.broadcast(["hist/1", "room"], [1, data])
    assert issubclass(EncodeError, TypeError)


def test_bad_arguments_are_refused_with_what_is_expected() -> None:
    with pytest.raises(TypeError, match=r"Emitter needs a redis\.client\.Redis or .*use AsyncEmitter"):
        Emitter(redis.asyncio.Redis())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"AsyncEmitter needs .*use Emitter"):
        AsyncEmitter(redis.Redis())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got str"):
        Emitter("redis://127.0.0.1:6379")  # type: ignore[arg-type]
    emitter = Emitter(_unreachable())
    with pytest.raises(TypeError, match="channel must be a str, got int"):
        emitter.publish(1, "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a list of channel names, not one name"):
        emitter.broadcast("room", "x")
    with pytest.raises(TypeError, match="channels must be ChannelRules"):
        Emitter(redis.Redis(), channels=[ChannelRule("a", ChannelOptions())])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="prefix must be a str"):
        Emitter(redis.Redis(), prefix=b"x:")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not be followed by"):
        Emitter(redis.Redis(), prefix="x{}:")


@pytest.mark.trio
async def test_an_unreachable_redis_raises_redis_pys_connection_error() -> None:
    emitter = Emitter(_unreachable(), channels=RULES)
    for channel in ("room", "hist/1"):
        with pytest.raises(redis.exceptions.ConnectionError):
            emitter.publish(channel, 1)
    with pytest.raises(redis.exceptions.ConnectionError):
        emitter.broadcast(["room", "hist/1"], 1)

    async def publish_async() -> list[type[BaseException]]:
        client = redis.asyncio.Redis(port=free_port(), socket_connect_timeout=1, retry=None)
        emitter = AsyncEmitter(client, channels=RULES)
        raised: list[type[BaseException]] = []
        for attempt in (
            emitter.publish("room", 1),
            emitter.publish("hist/1", 1),
            emitter.broadcast(["room"], 1),
        ):
            try:
                await attempt
            except redis.exceptions.ConnectionError as error:
                raised.append(type(error))
        await client.aclose()
        return raised

    assert len(await _in_asyncio(publish_async)) == 3


def test_a_refused_publication_raises_and_a_broadcast_says_which(
    redis_server: RedisProcess, prefix: str
) -> None:
    client = redis.Redis(port=redis_server.port)
    emitter = Emitter(client, prefix=prefix, channels=RULES)
    client.set(f"{{{prefix}hist/bad}}:meta", "not a hash")  # the script's HMGET fails: WRONGTYPE
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        emitter.publish("hist/bad", 1)
    with pytest.raises(
        BroadcastError, match=r"1 of 3 publications were refused: 'hist/bad': .*WRONGTYPE"
    ) as caught:
        emitter.broadcast(["room", "hist/bad", "hist/ok"], 2)
    plain, refused, stored = caught.value.results
    assert plain is None
    assert isinstance(refused, redis.exceptions.ResponseError)
    assert isinstance(stored, StreamPosition) and stored.offset == 1
    assert caught.value.errors == {"hist/bad": refused}
    assert client.xlen(f"{{{prefix}hist/ok}}:history") == 1  # the others were published


# -- the workers' config file -------------------------------------------------------------------


CONFIG = """
broker_prefix = "app1:"
port = 9000

[[channels]]
match = "hist/*"
history_size = 50
history_ttl = 120
"""


def test_from_config_takes_the_workers_prefix_and_channel_rules(tmp_path: Path) -> None:
    path = tmp_path / "hubbub.toml"
    path.write_text(CONFIG)
    emitter = Emitter.from_config(redis.Redis(), path)
    assert emitter.prefix == "app1:"
    assert emitter.channels == ChannelRules.from_config_file(path)
    assert emitter.channels.history("hist/1") == HistoryOptions(50, 120.0)
    assert emitter.channels.history("room") is None
    assert Emitter.from_config(redis.Redis(), str(path), prefix="other:").prefix == "other:"
    assert AsyncEmitter.from_config(redis.asyncio.Redis(), path).prefix == "app1:"
    path.write_text("port = 9000\n")
    assert Emitter.from_config(redis.Redis(), path).prefix == "hubbub:"  # the workers' default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "cannot read config file .*hubbub.toml: No such file"),
        ("[[channels]\n", "config file .*hubbub.toml is not valid TOML"),
        (
            '[[channels]]\nmatch = "h/*"\nhistory_size = 10\n',
            r"hubbub.toml: \[\[channels\]\] #1 \(h/\*\): .*history_ttl",
        ),
        ('channels = "h/*"\n', "hubbub.toml: channels must be an array of tables"),
        ("broker_prefix = 5\n", "hubbub.toml: broker_prefix must be a string, got 5"),
    ],
    ids=["missing", "not-toml", "bad-rule", "not-tables", "bad-prefix"],
)
def test_a_bad_config_file_is_refused_with_its_name(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "hubbub.toml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ValueError, match=message):
        Emitter.from_config(redis.Redis(), path)


# -- the documented examples, run as written ----------------------------------------------------


def _python_block(path: Path, marker: str) -> str:
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", path.read_text(), re.S) if marker in b]
    return block


@pytest.mark.parametrize(
    ("document", "marker"),
    [("README.md", "Emitter.from_config"), ("docs/emitter.md", "AsyncEmitter.from_config")],
    ids=["readme-sync", "docs-asyncio"],
)
def test_the_documented_examples_publish_as_written(
    redis_server: RedisProcess,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    document: str,
    marker: str,
) -> None:
    code = _python_block(ROOT / document, marker)
    assert "redis://127.0.0.1:6379/0" in code
    (tmp_path / "hubbub.toml").write_text(
        f'broker_prefix = "{prefix}"\n[[channels]]\nmatch = "chat/*"\nhistory_size = 10\nhistory_ttl = 60\n'
    )
    monkeypatch.chdir(tmp_path)
    client = redis.Redis(port=redis_server.port)
    pubsub = client.pubsub()
    pubsub.subscribe(f"{prefix}room", f"{prefix}chat/room")
    for _ in range(2):
        assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    namespace: dict[str, Any] = {}
    exec(code.replace("redis://127.0.0.1:6379/0", redis_server.url), namespace)
    if "async def notify" in code:
        asyncio.run(namespace["notify"]("room", "hi"))  # publishes on chat/room
        channel, history = "chat/room", True
    else:
        namespace["notify"]("room", "hi")
        channel, history = "room", False
    envelope = decode(pubsub.get_message(timeout=5)["data"])
    pubsub.close()
    assert (envelope.channel, envelope.payload) == (channel, {"text": "hi"})
    assert (envelope.offset == 1) is history
