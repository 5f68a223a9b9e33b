"""The emitter for redis-py's synchronous clients (a Django view, a Celery task, a script)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import redis
from redis.exceptions import NoScriptError

from hubbub.broker import StreamPosition

from ._core import EmitterBase, answer, noscript, results, send

__all__ = ["Emitter"]


class Emitter(EmitterBase[redis.Redis | redis.RedisCluster]):
    """Publishes to hubbub channels by writing to the broker directly, through a redis-py client.

    ``Emitter(client, *, prefix="hubbub:", channels=None)``: ``client`` is a ``redis.Redis``
    (standalone, or a Sentinel's ``master_for(...)``) or a ``redis.RedisCluster`` on the Redis the
    workers use (``--broker``). ``prefix`` must be the workers' ``broker_prefix``; ``channels`` their
    channel rules, so that a channel with history is numbered here as there (see
    :meth:`from_config`, which reads both from the workers' config file). The emitter does not
    close the client. It is safe to share between threads, as the client is, and renews its origin
    id in a child process after ``fork``. Attributes: ``client``, ``prefix``, ``channels``,
    ``sharded`` (a cluster client: plain publications go by ``SPUBLISH``) and ``origin`` (the
    envelopes' origin id, ``emitter:<host>:<pid>:<random>``).

    Errors: :class:`~hubbub.emitter.EncodeError` for data that cannot be encoded (nothing sent);
    redis-py's own exceptions as they are: ``redis.exceptions.ConnectionError`` and
    ``TimeoutError`` when Redis cannot be reached or does not answer in time (a publication may or
    may not have been published then), ``redis.exceptions.ResponseError`` when Redis refuses one.
    """

    CLIENTS: ClassVar[tuple[type, ...]] = (redis.Redis, redis.RedisCluster)
    CLUSTER: ClassVar[type] = redis.RedisCluster
    OTHER: ClassVar[str] = " (for a redis.asyncio client use AsyncEmitter)"

    def publish(self, channel: str, data: Any) -> StreamPosition | None:
        """Publish ``data`` on ``channel`` with one Redis command; every worker with a subscriber of
        the channel delivers it.

        Returns the :class:`~hubbub.broker.StreamPosition` it was stored at on a channel with
        history (the same atomic step as a worker's publish: the offsets go on from theirs), else
        None.
        """
        publication = self._prepare(channel, data)
        try:
            reply = send(self.client, publication, sharded=self.sharded)
        except NoScriptError:  # the script is not loaded on that Redis (yet): EVAL loads it
            reply = send(self.client, publication, sharded=self.sharded, text=True)
        return answer(publication, reply)

    def broadcast(self, channels: Iterable[str], data: Any) -> list[StreamPosition | None]:
        """Publish the same ``data`` on each of ``channels``, in one pipeline (one round trip, per
        node on a cluster); what :meth:`publish` returns for each, in order.

        Raises :class:`~hubbub.emitter.BroadcastError` (with every channel's result) when Redis
        refused some of them; the others were published.
        """
        names, publications = self._prepare_all(channels, data)
        if not publications:
            return []
        replies = self._pipeline(publications, text=False)
        retry = noscript(replies)
        if retry:
            again = self._pipeline([publications[i] for i in retry], text=True)
            for i, reply in zip(retry, again, strict=True):
                replies[i] = reply
        return results(names, publications, replies)

    def _pipeline(self, publications: list[Any], *, text: bool) -> list[Any]:
        with self.client.pipeline(transaction=False) as pipe:
            for publication in publications:
                send(pipe, publication, sharded=self.sharded, text=text)
            return pipe.execute(raise_on_error=False)
