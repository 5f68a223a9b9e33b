"""One publication as Redis takes it, built in one place for every process that publishes.

The broker's publisher (``_redis_publisher.py``) and :mod:`hubbub.emitter` both call
:func:`redis_publication`: it packs the envelope (``_envelope.encode``), names the Redis channel
(``ChannelNames``) and, on a channel with history, gives the history script's ``KEYS`` and ``ARGV``
(``_history_script.publish_args``). The command that carries a publication is then

* ``PUBLISH name envelope`` (``SPUBLISH`` on a Redis Cluster) on a channel without history;
* ``EVALSHA`` of :data:`~._history_script.PUBLISH` with ``keys`` and ``args`` on a channel with
  history (``EVAL`` of its text when Redis answers ``NOSCRIPT``), whose answer
  :func:`~._history_script.read_position` reads as the :class:`StreamPosition` it was stored at.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from ._envelope import Envelope, encode
from ._history import HistoryOptions
from ._history_script import publish_args
from ._redis_names import ChannelNames

__all__ = ["RedisPublication", "new_origin", "redis_publication"]


@dataclass(frozen=True, slots=True)
class RedisPublication:
    """What one publication sends: the Redis channel ``name`` and the packed ``envelope``; on a
    channel with history the script's ``keys`` (meta, stream) and ``args`` as well."""

    name: bytes
    envelope: bytes
    keys: tuple[bytes, bytes] | None = None
    args: tuple[Any, ...] = ()

    @property
    def history(self) -> bool:
        """Whether it goes through the history script (else a plain ``PUBLISH``/``SPUBLISH``)."""
        return self.keys is not None


def redis_publication(
    names: ChannelNames, envelope: Envelope, history: HistoryOptions | None, *, sharded: bool
) -> RedisPublication:
    """The publication of ``envelope`` under ``names``; with ``history``, through the history script.

    ``sharded``: the script publishes with ``SPUBLISH`` (a Redis Cluster). Raises :class:`TypeError`
    when the payload is not msgpack-serialisable and :class:`RecursionError` when it is nested too
    deeply (``_envelope.encode``).
    """
    data = encode(envelope)
    name = names.redis(envelope.channel)
    if history is None:
        return RedisPublication(name, data)
    args = tuple(publish_args(name, data, history, sharded=sharded))
    return RedisPublication(name, data, names.history_keys(envelope.channel), args)


def new_origin(kind: str = "") -> str:
    """An origin id for the envelopes of one publisher: ``[kind:]host:pid:random``."""
    origin = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
    return f"{kind}:{origin}" if kind else origin
