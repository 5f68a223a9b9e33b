"""Every use of coredis internals by the Redis broker, in one place.

Checked against coredis 6.9.0 (:data:`CHECKED_VERSION`); ``tests/broker/test_redis_parts.py``
checks that each of them still exists in the installed coredis. What is read here and why:

* ``coredis._utils.hash_slot`` and ``RedisCluster.connection_pool.cluster_layout.node_for_slot``:
  which node owns a channel's slot, before and after a pipelined ``SPUBLISH``, to tell that coredis
  followed a ``MOVED`` redirect (the public API does not say).
* ``ShardedPubSub.shard_connections`` / ``PubSub.connection`` and ``Connection.create_request``:
  a ``PING`` on each pub/sub connection when a session is drained.
* ``Connection._push_message_buffer_in`` and ``PubSub._receive_stream`` (anyio memory streams): their
  statistics tell that every message Redis sent has been handed to the receive loop.
* ``PubSub._receive_stream.receive_nowait``: the messages coredis has already read, taken without
  waiting. ``get_message`` opens a cancel scope and yields to the loop for every message (on
  asyncio a whole loop iteration each); taking what is buffered first hands a burst from Redis to
  the hub in one scheduler step, so its frames leave in one write per subscriber.

coredis is imported lazily so that ``memory://`` works without touching it.
"""

from __future__ import annotations

from typing import Any

import anyio

__all__ = [
    "CHECKED_VERSION",
    "ping",
    "pubsub_connections",
    "push_buffers_empty",
    "shard_names",
    "take_buffered",
]

#: The coredis version these accesses were read from and tested with.
CHECKED_VERSION = "6.9.0"


def shard_names(client: Any, names: list[bytes]) -> list[str | None]:
    """The cluster node that owns each channel name, per ``client``'s slot map (None if unknown)."""
    from coredis._utils import hash_slot

    layout = client.connection_pool.cluster_layout
    owners: list[str | None] = []
    for name in names:
        try:
            owners.append(layout.node_for_slot(hash_slot(name)).name)
        except Exception:
            owners.append(None)
    return owners


def pubsub_connections(pubsub: Any) -> list[Any]:
    """The connections a (sharded) pub/sub object reads from."""
    shards = getattr(pubsub, "shard_connections", None)
    return list(shards.values()) if isinstance(shards, dict) else [pubsub.connection]


async def ping(connection: Any) -> None:
    """Send ``PING`` on a pub/sub connection (its reply comes after every message sent before it)."""
    await connection.create_request(b"PING")


def push_buffers_empty(pubsub: Any, connections: list[Any]) -> bool:
    """True once coredis holds no unread pub/sub message and the receive loop is waiting.

    Reads coredis internals (memory-stream statistics); without them, assume drained.
    """
    try:
        if any(c._push_message_buffer_in.statistics().current_buffer_used for c in connections):
            return False
        stats = pubsub._receive_stream.statistics()
    except AttributeError:  # pragma: no cover - another coredis layout
        return True
    return bool(stats.current_buffer_used == 0 and stats.tasks_waiting_receive > 0)


def take_buffered(pubsub: Any) -> Any:
    """The next pub/sub message coredis has already read, or None without waiting.

    The broker's pub/sub keeps subscribe and unsubscribe messages (``ignore_subscribe_messages``
    is False), so nothing is filtered here that ``get_message`` would filter.
    """
    try:
        return pubsub._receive_stream.receive_nowait()
    except (anyio.WouldBlock, AttributeError):
        return None
