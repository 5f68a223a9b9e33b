"""The publisher in-process: the inline path, the broker path, and what a refused publish becomes."""

from __future__ import annotations

from typing import Any

import pytest

from hubbub.broker import BrokerUnavailable, DeliverFn, MemoryBroker
from hubbub.cluster._publisher import Publisher
from hubbub.protocol import SCError


class DownBroker:
    """A networked broker that has lost its connection (what a dead Redis gives)."""

    def attach(self, deliver: DeliverFn) -> None:
        pass

    async def subscribe(self, channel: str) -> None:
        raise BrokerUnavailable("redis://:secret@10.0.0.5:6379 refused the connection")

    async def unsubscribe(self, channel: str) -> None:
        pass

    async def publish(self, channel: str, data: Any) -> None:
        raise BrokerUnavailable("redis://:secret@10.0.0.5:6379 refused the connection")

    @property
    def ready(self) -> bool:
        return False

    def subscriptions(self) -> frozenset[str]:
        return frozenset()


@pytest.mark.trio
async def test_the_in_process_broker_delivers_inline_with_the_prepared_text() -> None:
    broker = MemoryBroker()
    seen: list[tuple[Any, ...]] = []
    broker.attach(lambda *args: seen.append(args))
    await broker.subscribe("c")
    publisher = Publisher(broker)
    timings: list[float] = []
    publisher.observer = timings.append
    assert publisher.inline
    publisher.publish_inline("c", 1, "packet text")
    await publisher.publish("c", 2)
    assert seen == [("c", 1, "packet text"), ("c", 2)]
    assert len(timings) == 2


@pytest.mark.trio
async def test_a_refused_publish_is_a_generic_broker_error_and_counted() -> None:
    publisher = Publisher(DownBroker())
    assert not publisher.inline
    with pytest.raises(SCError) as raised:
        await publisher.publish("room", 1)
    assert raised.value.name == "BrokerError"
    assert "secret" not in raised.value.message and "room" in raised.value.message
    assert publisher.failures == 1
