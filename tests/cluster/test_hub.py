"""The hub in-process: membership, reference-counted broker subscriptions with rollback, encode-once."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from hubbub.broker import BrokerUnavailable, DeliverFn, InProcessDelivery, MemoryBroker
from hubbub.cluster._hub import Hub, Publication
from hubbub.protocol import JsonCodec


class Recorder:
    """A subscriber that keeps what it is sent."""

    def __init__(self) -> None:
        self.link = self
        self.frames: list[bytes] = []
        self.filtered: list[tuple[str, Any]] = []
        self.publications: list[Publication] = []

    def send_frame(self, frame: bytes) -> None:
        self.frames.append(frame)

    def deliver_filtered(self, publication: Publication) -> None:
        self.filtered.append((publication.channel, publication.data))
        self.publications.append(publication)


class CountingCodec(JsonCodec):
    def __init__(self) -> None:
        self.encodes = 0

    def encode(self, value: Any) -> str:
        self.encodes += 1
        return super().encode(value)


class NetworkBroker:
    """A broker that waits on subscribe like a networked one and can refuse (a fault Redis would need a
    dying server for); the channels it serves are a MemoryBroker's."""

    def __init__(self) -> None:
        self._memory = MemoryBroker()
        self.calls: list[tuple[str, str]] = []
        self.refuse = False

    def attach(self, deliver: DeliverFn) -> None:
        self._memory.attach(deliver)

    async def subscribe(self, channel: str) -> None:
        await trio.lowlevel.checkpoint()
        self.calls.append(("subscribe", channel))
        if self.refuse:
            raise BrokerUnavailable("not connected")
        await self._memory.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        await trio.lowlevel.checkpoint()
        self.calls.append(("unsubscribe", channel))
        await self._memory.unsubscribe(channel)

    async def publish(self, channel: str, data: Any) -> None:
        await self._memory.publish(channel, data)

    @property
    def ready(self) -> bool:
        return True

    def subscriptions(self) -> frozenset[str]:
        return self._memory.subscriptions()


def _payload(frame: bytes) -> Any:
    return json.loads(frame[2:])  # short text frames: a 2-byte header


def test_the_memory_broker_has_the_in_process_capability_and_a_networked_one_not() -> None:
    assert isinstance(MemoryBroker(), InProcessDelivery)
    assert not isinstance(NetworkBroker(), InProcessDelivery)


@pytest.mark.trio
async def test_membership_is_the_hubs_and_delivery_reaches_members_only() -> None:
    broker = MemoryBroker()
    async with trio.open_nursery() as nursery:
        hub = Hub(broker, nursery, [], JsonCodec())
        a, b = Recorder(), Recorder()
        await hub.subscribe(a, "x")
        await hub.subscribe(b, "x")
        await hub.subscribe(b, "y")
        assert hub.channels_of(b) == {"x", "y"} and hub.channel_total(a) == 1
        assert hub.is_member(a, "x") and not hub.is_member(a, "y")
        assert (hub.channel_count, hub.subscription_count) == (2, 3)
        await broker.publish("y", 1)
        assert (len(a.frames), len(b.frames)) == (0, 1)
        hub.unsubscribe(b, "x")
        await broker.publish("x", 2)
        assert (len(a.frames), len(b.frames)) == (1, 1)
        hub.remove(b)
        assert hub.channels_of(b) == frozenset() and broker.subscriptions() == {"x"}
        hub.remove(a)
        assert broker.subscriptions() == frozenset() and hub.channel_count == 0


@pytest.mark.trio
async def test_the_broker_is_subscribed_on_the_first_member_and_released_after_the_last() -> None:
    broker = NetworkBroker()
    async with trio.open_nursery() as nursery:
        hub = Hub(broker, nursery, [], JsonCodec())
        members = [Recorder() for _ in range(3)]
        for member in members:
            await hub.subscribe(member, "news")
        assert broker.calls == [("subscribe", "news")]
        for member in members[:2]:
            hub.unsubscribe(member, "news")
        await trio.testing.wait_all_tasks_blocked()
        assert broker.calls == [("subscribe", "news")]
        hub.unsubscribe(members[2], "news")
        await trio.testing.wait_all_tasks_blocked()
        assert broker.calls == [("subscribe", "news"), ("unsubscribe", "news")]
        assert broker.subscriptions() == frozenset()


@pytest.mark.trio
async def test_a_refused_subscribe_rolls_the_membership_back() -> None:
    broker = NetworkBroker()
    broker.refuse = True
    async with trio.open_nursery() as nursery:
        hub = Hub(broker, nursery, [], JsonCodec())
        member = Recorder()
        with pytest.raises(BrokerUnavailable):
            await hub.subscribe(member, "news")
        assert not hub.is_member(member, "news") and hub.channel_count == 0
        broker.refuse = False
        await hub.subscribe(member, "news")  # the next first member subscribes again
        await broker.publish("news", "hello")
        assert _payload(member.frames[0]) == {
            "event": "#publish",
            "data": {"channel": "news", "data": "hello"},
        }


@pytest.mark.trio
async def test_a_publication_is_encoded_once_for_all_subscribers() -> None:
    codec = CountingCodec()
    broker = MemoryBroker()
    async with trio.open_nursery() as nursery:
        hub = Hub(broker, nursery, [], codec)
        members = [Recorder() for _ in range(50)]
        for member in members:
            await hub.subscribe(member, "fan")
        await broker.publish("fan", {"n": 1})
        assert codec.encodes == 1
        assert len({frame for member in members for frame in member.frames}) == 1
        assert hub.deliveries == 50 and hub.publications == 1
        prepared = '{"event":"#publish","data":{"channel":"fan","data":{"n": 2}}}'
        broker.publish_now("fan", {"n": 2}, prepared)
        assert codec.encodes == 1  # the prepared text is sent as it is
        assert members[0].frames[1].endswith(prepared.encode())


@pytest.mark.trio
async def test_with_outbound_middleware_each_subscriber_filters_its_own_deliveries() -> None:
    broker = MemoryBroker()
    outbound: list[Any] = []
    async with trio.open_nursery() as nursery:
        hub = Hub(broker, nursery, outbound, JsonCodec())
        member = Recorder()
        await hub.subscribe(member, "x")
        outbound.append(object())  # the chain is read at each delivery
        await broker.publish("x", 1)
        assert member.filtered == [("x", 1)] and member.frames == []


@pytest.mark.trio
async def test_with_outbound_middleware_a_publication_is_encoded_once_when_first_sent_unchanged() -> None:
    broker = MemoryBroker()
    codec = CountingCodec()
    async with trio.open_nursery() as nursery:
        hub = Hub(broker, nursery, [object()], codec)
        members = [Recorder() for _ in range(3)]
        for member in members:
            await hub.subscribe(member, "x")
        await broker.publish("x", {"n": 1})
        (publication,) = {id(m.publications[0]): m.publications[0] for m in members}.values()
        assert codec.encodes == 0  # nothing encoded until a subscriber sends it unchanged
        frames = [member.publications[0].frame() for member in members]
        assert codec.encodes == 1 and frames[0] is frames[1] is frames[2]
        assert frames[0] is not None and json.loads(frames[0][2:]) == {
            "event": "#publish",
            "data": {"channel": "x", "data": {"n": 1}},
        }
        assert publication.frame() is frames[0]


@pytest.mark.trio
async def test_a_publication_the_codec_cannot_encode_has_no_frame(caplog: pytest.LogCaptureFixture) -> None:
    broker = MemoryBroker()
    async with trio.open_nursery() as nursery:
        hub = Hub(broker, nursery, [object()], JsonCodec())
        member = Recorder()
        await hub.subscribe(member, "x")
        await broker.publish("x", {"value": object()})
        publication = member.publications[0]
        assert publication.frame() is None and publication.frame() is None
        assert len([r for r in caplog.records if "cannot be encoded" in r.getMessage()]) == 1
