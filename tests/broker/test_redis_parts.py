"""The Redis broker's parts on their own: channel names, the target's log form, the current
session, and the coredis internals the broker reads (checked against real Redis servers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from hubbub.broker import BrokerUnavailable, RedisTarget, parse_redis_url
from hubbub.broker._coredis_internals import (
    ping,
    pubsub_connections,
    push_buffers_empty,
    shard_names,
    take_buffered,
)
from hubbub.broker._redis_names import ChannelNames, hash_tag
from hubbub.broker._redis_session import BrokerStats, CurrentSession, RedisOptions, open_session


@pytest.mark.parametrize("channel", ["room", "", "{x}y", "é\U0001f600", "a\ud800", "\udc00{}"])
def test_channel_names_round_trip(channel: str) -> None:
    names = ChannelNames("p:")
    name = names.redis(channel)
    assert name.startswith(b"p:")
    assert names.local(name) == channel
    if not any("\ud800" <= c <= "\udfff" for c in channel):
        assert names.local(name.decode()) == channel  # coredis may hand names over decoded


def test_channel_names_are_one_to_one_and_tag_only_names_that_are_not_unicode() -> None:
    names = ChannelNames("p:")
    assert names.redis("room") == b"p:room"
    assert names.redis("{x}y") == b"p:{x}y"
    assert names.redis("a\ud800").startswith(b"p:{")
    assert len({names.redis(c) for c in ["\ud800", "\udc00", "\ud800\ud800", "{}\ud800"]}) == 4


@pytest.mark.parametrize("name", [b"q:room", b"p:\xff", b"p:{abc\xff", 42, None])
def test_names_outside_the_prefix_or_unreadable_are_not_channels(name: Any) -> None:
    assert ChannelNames("p:").local(name) is None


def test_names_without_a_usable_hash_tag_get_one_and_plain_lookalikes_are_not_channels() -> None:
    names = ChannelNames("p:")
    for channel in ["a}b", "}", "x{}y", "{}"]:
        name = names.redis(channel)
        assert name.startswith(b"p:{") and name.endswith(b"\xff" + channel.encode())
        assert names.local(name) == channel
        assert names.local(b"p:" + channel.encode()) is None  # what redis() never gives
    assert names.redis("{a") == b"p:{a"  # hashed whole, and {p:{a}... hashes the same
    assert names.redis("a{b}c") == b"p:a{b}c"
    assert ChannelNames("").redis("") != b""


def test_history_keys_are_readable_for_plain_names() -> None:
    assert ChannelNames("hubbub:").history_keys("chat/1") == (
        b"{hubbub:chat/1}:meta",
        b"{hubbub:chat/1}:history",
    )
    assert ChannelNames("p:").history_keys("{t}x") == (b"{t}:meta:p:{t}x", b"{t}:history:p:{t}x")


@pytest.mark.parametrize("prefix", ["{}", "a{}b:", "x}{}"])
def test_a_prefix_that_hashes_every_name_whole_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="must not be followed by"):
        ChannelNames(prefix)


_BRACY = st.text(alphabet=st.sampled_from(["{", "}", "a", "b", ":", "\ud800", "é"]), max_size=8)


@settings(max_examples=400, deadline=None)
@given(prefix=_BRACY.filter(lambda p: "\ud800" not in p), channels=st.lists(_BRACY, min_size=2, max_size=6))
def test_every_name_shares_its_slot_with_its_history_keys_and_maps_back(
    prefix: str, channels: list[str]
) -> None:
    from coredis._utils import hash_slot

    try:
        names = ChannelNames(prefix)
    except ValueError:
        return
    seen_names: dict[bytes, str] = {}
    seen_keys: dict[bytes, str] = {}
    for channel in channels:
        name = names.redis(channel)
        meta, stream = names.history_keys(channel)
        assert names.local(name) == channel
        tag = hash_tag(name)
        assert tag and b"}" not in tag
        assert hash_slot(name) == hash_slot(meta) == hash_slot(stream)
        assert seen_names.setdefault(name, channel) == channel  # distinct channels, distinct names
        for key in (meta, stream):
            assert seen_keys.setdefault(key, channel) == channel  # ... and distinct keys
        assert meta != stream


@pytest.mark.parametrize(
    "url",
    [
        "redis://:pw@h:1/0",
        "redis+sentinel://:pw@s1:26379,s2:26379/mymaster?sentinel_password=pw",
        "redis+cluster://:pw@a:1,b:2",
    ],
)
def test_target_description_has_no_password(url: str) -> None:
    target = parse_redis_url(url)
    assert isinstance(target, RedisTarget)
    assert "pw" not in target.describe()


def test_no_live_session_names_the_target_and_the_last_error_but_no_secret() -> None:
    stats = BrokerStats(last_error="ConnectionError: refused")
    current = CurrentSession(RedisTarget("standalone", url="redis://u:pw@h:1/0"), stats)
    with pytest.raises(BrokerUnavailable) as info:
        current.live()
    assert str(info.value) == "not connected to redis at redis://u:***@h:1/0 (ConnectionError: refused)"
    current.closing = True
    with pytest.raises(BrokerUnavailable, match="broker is closed"):
        current.live()


@pytest.mark.trio
async def test_wait_ready_returns_once_ready_again() -> None:
    current = CurrentSession(RedisTarget("standalone", url="redis://h"), BrokerStats())
    waited = trio.Event()

    async def wait() -> None:
        await current.wait_ready()
        waited.set()

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            current.set_ready()
            current.clear_ready()
            nursery.start_soon(wait)
            await trio.testing.wait_all_tasks_blocked()
            assert not waited.is_set()
            current.set_ready()
            await waited.wait()
    assert current.ready


async def _check_pubsub_internals(session: Any, name: bytes) -> None:
    await session.pubsub.subscribe(name)
    connections = pubsub_connections(session.pubsub)
    assert connections
    for connection in connections:
        assert connection._push_message_buffer_in.statistics().current_buffer_used == 0
        await ping(connection)
    assert session.pubsub._receive_stream.statistics().current_buffer_used >= 0
    taken = take_buffered(session.pubsub)  # the subscribe confirmation, if nothing read it yet
    assert taken is None or taken["type"] in ("subscribe", "ssubscribe"), taken
    assert take_buffered(session.pubsub) is None  # nothing left: None at once, no wait
    assert isinstance(push_buffers_empty(session.pubsub, connections), bool)


@asynccontextmanager
async def _session(url: str) -> AsyncIterator[Any]:
    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            yield await open_session(parse_redis_url(url), RedisOptions(), stack)


@pytest.mark.redis
@pytest.mark.trio
async def test_coredis_internals_exist_standalone(redis_server: Any, prefix: str) -> None:
    async with _session(redis_server.url) as session:
        await _check_pubsub_internals(session, f"{prefix}internals".encode())


@pytest.mark.redis
@pytest.mark.trio
async def test_coredis_internals_exist_cluster(redis_cluster: Any, prefix: str) -> None:
    async with _session(redis_cluster.url) as session:
        names = [f"{prefix}{i}".encode() for i in range(20)]
        owners = shard_names(session.client, names)
        assert set(owners) <= {f"127.0.0.1:{node.port}" for node in redis_cluster.nodes}
        assert len(set(owners)) > 1, owners
        await _check_pubsub_internals(session, names[0])
