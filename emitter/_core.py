"""What :class:`~hubbub.emitter.Emitter` and :class:`~hubbub.emitter.AsyncEmitter` share: the
publications they build and the commands and answers they read, without any I/O.

Every publication is built by the broker's own :func:`hubbub.broker._publication.redis_publication`
(the envelope, the Redis channel name, the history script's ``KEYS`` and ``ARGV``), so an emitter
writes exactly what a worker writes. The commands go through redis-py: ``PUBLISH`` (``SPUBLISH`` on
a cluster), or ``EVALSHA`` of the history script (``EVAL`` again when Redis answers ``NOSCRIPT``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from typing import Any, ClassVar, Generic, Self, TypeVar

from redis.exceptions import NoScriptError

from hubbub._config_file import PREFIX_KEY, read_config_file
from hubbub.broker import ChannelRules, Envelope, StreamPosition
from hubbub.broker._history_script import PUBLISH, read_position
from hubbub.broker._publication import RedisPublication, new_origin, redis_publication
from hubbub.broker._redis_names import ChannelNames

from ._errors import BroadcastError, EncodeError

__all__ = ["DEFAULT_PREFIX", "EmitterBase", "answer", "noscript", "results", "send"]

#: The prefix workers use unless ``broker_prefix`` is set.
DEFAULT_PREFIX = "hubbub:"
_SCRIPT_TEXT = PUBLISH.text.decode()

ClientT = TypeVar("ClientT")


class EmitterBase(Generic[ClientT]):
    """What both emitters do without I/O: check the client, keep the names, rules, origin and
    publish ids, and build each publication."""

    #: The redis-py client classes this emitter takes, and the one of them that is a cluster client.
    CLIENTS: ClassVar[tuple[type, ...]]
    CLUSTER: ClassVar[type]
    #: Said when the client is of another kind (the other emitter's, say).
    OTHER: ClassVar[str]

    def __init__(
        self, client: ClientT, *, prefix: str = DEFAULT_PREFIX, channels: ChannelRules | None = None
    ) -> None:
        if not isinstance(client, self.CLIENTS):
            kinds = " or ".join(f"{kind.__module__}.{kind.__name__}" for kind in self.CLIENTS)
            raise TypeError(f"{type(self).__name__} needs a {kinds}, got {type(client).__name__}{self.OTHER}")
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        if channels is not None and not isinstance(channels, ChannelRules):
            raise TypeError(f"channels must be ChannelRules or None, got {type(channels).__name__}")
        #: The redis-py client the emitter publishes through (it does not close it).
        self.client = client
        #: Whether ``client`` is a Redis Cluster client: plain publications are ``SPUBLISH``ed.
        self.sharded = isinstance(client, self.CLUSTER)
        self.prefix = prefix
        self.channels = channels if channels is not None else ChannelRules()
        self._names = ChannelNames(prefix)
        self._renew()

    @classmethod
    def from_config(cls, client: ClientT, path: str | os.PathLike[str], *, prefix: str | None = None) -> Self:
        """An emitter with the prefix (``broker_prefix``) and the ``[[channels]]`` rules of hubbub's
        TOML config file at ``path``, the file the workers run with (``hubbub run --config``).

        ``prefix`` overrides the file's (say, when the workers get ``HUBBUB_BROKER_PREFIX`` from
        their environment). Raises :class:`ValueError` naming the file when it cannot be read, is not
        TOML, or has a bad rule or prefix.
        """
        data = read_config_file(path)
        rules = ChannelRules.from_config_data(data, path)
        if prefix is None:
            prefix = data.get(PREFIX_KEY, DEFAULT_PREFIX)
            if not isinstance(prefix, str):
                raise ValueError(
                    f"config file {os.fspath(path)}: {PREFIX_KEY} must be a string, got {prefix!r}"
                )
        return cls(client, prefix=prefix, channels=rules)

    def _renew(self) -> None:
        """A new origin id and publish ids from 0: at start, and in a child after ``fork``."""
        self._pid = os.getpid()
        self.origin = new_origin("emitter")
        self._ids = itertools.count()

    def _prepare(self, channel: str, data: Any) -> RedisPublication:
        """The publication of ``data`` on ``channel``, through the history script when the rules give
        the channel history."""
        if not isinstance(channel, str):
            raise TypeError(f"channel must be a str, got {type(channel).__name__}")
        if os.getpid() != self._pid:
            self._renew()
        envelope = Envelope.new(channel, data, publish_id=next(self._ids), origin=self.origin)
        try:
            return redis_publication(
                self._names, envelope, self.channels.history(channel), sharded=self.sharded
            )
        except (TypeError, RecursionError) as error:
            raise EncodeError(
                f"cannot publish on {channel!r}: the data cannot be encoded ({error})"
            ) from None

    def _prepare_all(self, channels: Iterable[str], data: Any) -> tuple[list[str], list[RedisPublication]]:
        """The channels as a list and one publication for each; all built before anything is sent."""
        if isinstance(channels, str | bytes):
            raise TypeError("channels must be a list of channel names, not one name")
        names = list(channels)
        return names, [self._prepare(channel, data) for channel in names]


def send(target: Any, publication: RedisPublication, *, sharded: bool, text: bool = False) -> Any:
    """Send (or queue, on a pipeline) the one command of ``publication`` through redis-py's ``target``.

    ``text``: run the history script by ``EVAL`` of its text instead of ``EVALSHA``.
    """
    keys = publication.keys
    if keys is None:
        if sharded:
            return target.spublish(publication.name, publication.envelope)
        return target.publish(publication.name, publication.envelope)
    if text:
        return target.eval(_SCRIPT_TEXT, len(keys), *keys, *publication.args)
    return target.evalsha(PUBLISH.sha, len(keys), *keys, *publication.args)


def answer(publication: RedisPublication, reply: Any) -> StreamPosition | None:
    """What a publish returns: the position a history publication was stored at, else None."""
    return read_position(reply) if publication.history else None


def noscript(replies: list[Any]) -> list[int]:
    """The indexes of pipeline replies that are ``NOSCRIPT`` (to run again by ``EVAL``)."""
    return [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]


def results(
    channels: list[str], publications: list[RedisPublication], replies: list[Any]
) -> list[StreamPosition | None]:
    """What a broadcast returns; :class:`BroadcastError` when Redis refused some of them."""
    found: list[StreamPosition | Exception | None] = []
    for publication, reply in zip(publications, replies, strict=True):
        if isinstance(reply, Exception):
            found.append(reply)
        else:
            try:
                found.append(answer(publication, reply))
            except ValueError as error:
                found.append(error)
    if any(isinstance(result, Exception) for result in found):
        raise BroadcastError(channels, found)
    return [result for result in found if not isinstance(result, Exception)]
