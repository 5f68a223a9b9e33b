"""A smoke set with minbin against a worker on ``--loop asyncio`` (json runs the whole suite there)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from hubbub.client import RemoteError, connect

pytestmark = pytest.mark.anyio


@pytest.fixture
def minbin_asyncio_server(hubbub_server: Any) -> Any:
    return hubbub_server("minbin", "--loop", "asyncio")


async def test_subscribe_publish_invoke_binary(minbin_asyncio_server: Any) -> None:
    url = minbin_asyncio_server.url
    async with connect(url, codec="minbin") as reader, connect(url, codec="minbin") as writer:
        async with reader.subscribe("room") as channel:
            await channel.wait_subscribed(timeout=5)
            await writer.publish("room", {"blob": b"\x00\x01\xff", "n": [1, 2.5, None]})
            with anyio.fail_after(5):
                assert await channel.receive() == {"blob": b"\x00\x01\xff", "n": [1, 2.5, None]}
        assert await writer.invoke("echo", {"a": b"bytes"}, timeout=5) == {"a": b"bytes"}
        with pytest.raises(RemoteError):
            await writer.invoke("fail", None, timeout=5)
