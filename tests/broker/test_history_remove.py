"""remove_history on every broker: the stored publications go, the offset and epoch go on."""

from __future__ import annotations

import pytest
import trio

from hubbub.broker import HistoryBroker, HistoryOptions, StreamPosition, open_broker

pytestmark = pytest.mark.trio

OPTIONS = HistoryOptions(size=10, ttl=60)


async def test_remove_history_keeps_the_position(broker_url: str, prefix: str) -> None:
    async with open_broker(broker_url, prefix=prefix) as broker:
        with trio.fail_after(10):
            await broker.wait_ready()
        assert isinstance(broker, HistoryBroker)
        await broker.remove_history("never-published")  # nothing to remove: no error
        first = await broker.publish_history("room", "a", OPTIONS)
        for data in ("b", "c"):
            await broker.publish_history("room", data, OPTIONS)
        await broker.publish_history("other", "kept", OPTIONS)

        await broker.remove_history("room")
        page = await broker.history("room", OPTIONS)
        assert page.entries == []
        assert page.position == StreamPosition(3, first.epoch)
        assert [e.data for e in (await broker.history("other", OPTIONS)).entries] == ["kept"]

        after = await broker.publish_history("room", "d", OPTIONS)
        assert after == StreamPosition(4, first.epoch)
        page = await broker.history("room", OPTIONS, since=0)
        assert [(e.offset, e.data) for e in page.entries] == [(4, "d")]
