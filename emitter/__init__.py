"""Publish to hubbub channels from any Python process, through Redis, with no hubbub server in the path.

A Django view, a Celery task or a script writes the broker's own envelope on the Redis channel the
workers listen on (``PUBLISH``, ``SPUBLISH`` on a Redis Cluster), or runs the broker's history step
on a channel with history, with one Redis command per publication::

    import redis
    from hubbub.emitter import Emitter

    emitter = Emitter.from_config(redis.Redis.from_url("redis://127.0.0.1:6379/0"), "hubbub.toml")
    emitter.publish("chat/1", {"text": "hi"})

Built on redis-py; importing it imports neither trio nor coredis. See ``docs/emitter.md``.
"""

from ._async import AsyncEmitter as AsyncEmitter
from ._errors import BroadcastError as BroadcastError
from ._errors import EncodeError as EncodeError
from ._sync import Emitter as Emitter

__all__ = ["AsyncEmitter", "BroadcastError", "Emitter", "EncodeError"]
