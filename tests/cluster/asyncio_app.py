"""An app whose procedures use asyncio-only libraries for real: redis.asyncio, asyncio.Queue, asyncio.sleep.

``HUBBUB_TEST_REDIS`` names the Redis it counts visits in.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import redis.asyncio

from hubbub.cluster import App, Request

app = App()
_queue: asyncio.Queue[Any] = asyncio.Queue()


@app.procedure("visit")
async def visit(request: Request) -> Any:
    """Count a visit in Redis with redis.asyncio and answer the new count."""
    client = redis.asyncio.Redis.from_url(os.environ["HUBBUB_TEST_REDIS"])
    try:
        count = await client.incr(f"asyncio-app:{request.data}")
    finally:
        await client.aclose()
    return {"visits": int(count)}


@app.procedure("relay")
async def relay(request: Request) -> Any:
    """Pass the data through an asyncio.Queue after an asyncio.sleep."""
    await asyncio.sleep(0.01)
    await _queue.put(request.data)
    return await _queue.get()
