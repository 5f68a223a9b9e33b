"""The emitter for redis-py's asyncio clients (an ASGI view, an asyncio worker)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import redis.asyncio
from redis.exceptions import NoScriptError

from hubbub.broker import StreamPosition

from ._core import EmitterBase, answer, noscript, results, send

__all__ = ["AsyncEmitter"]


class AsyncEmitter(EmitterBase[redis.asyncio.Redis | redis.asyncio.RedisCluster]):
    """:class:`~hubbub.emitter.Emitter` for a ``redis.asyncio.Redis`` or
    ``redis.asyncio.RedisCluster`` client: the same arguments, publications and errors, with
    ``await``."""

    CLIENTS: ClassVar[tuple[type, ...]] = (redis.asyncio.Redis, redis.asyncio.RedisCluster)
    CLUSTER: ClassVar[type] = redis.asyncio.RedisCluster
    OTHER: ClassVar[str] = " (for a synchronous redis client use Emitter)"

    async def publish(self, channel: str, data: Any) -> StreamPosition | None:
        """Publish ``data`` on ``channel`` with one Redis command (see
        :meth:`Emitter.publish <hubbub.emitter.Emitter.publish>`)."""
        publication = self._prepare(channel, data)
        try:
            reply = await send(self.client, publication, sharded=self.sharded)
        except NoScriptError:  # the script is not loaded on that Redis (yet): EVAL loads it
            reply = await send(self.client, publication, sharded=self.sharded, text=True)
        return answer(publication, reply)

    async def broadcast(self, channels: Iterable[str], data: Any) -> list[StreamPosition | None]:
        """Publish the same ``data`` on each of ``channels`` in one pipeline (see
        :meth:`Emitter.broadcast <hubbub.emitter.Emitter.broadcast>`)."""
        names, publications = self._prepare_all(channels, data)
        if not publications:
            return []
        replies = await self._pipeline(publications, text=False)
        retry = noscript(replies)
        if retry:
            again = await self._pipeline([publications[i] for i in retry], text=True)
            for i, reply in zip(retry, again, strict=True):
                replies[i] = reply
        return results(names, publications, replies)

    async def _pipeline(self, publications: list[Any], *, text: bool) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            for publication in publications:
                send(pipe, publication, sharded=self.sharded, text=text)
            return await pipe.execute(raise_on_error=False)
