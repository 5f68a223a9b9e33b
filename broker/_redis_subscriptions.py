"""Subscriptions on Redis: the channels a worker wants, (re)subscribing them, and the receive loop."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from ._base import BrokerUnavailable, DeliverFn
from ._coredis_internals import take_buffered
from ._envelope import EnvelopeError, decode
from ._history import PositionedDeliverFn
from ._redis_names import ChannelNames
from ._redis_session import (
    BrokerStats,
    CurrentSession,
    RedisOptions,
    Session,
    describe,
    leaves_connection_unknown,
    on_session,
)

__all__ = ["Subscriptions"]

log = logging.getLogger("hubbub.broker.redis")

#: How many channels one (S)SUBSCRIBE call carries when a session resubscribes.
_RESUBSCRIBE_CHUNK = 500


def _drop(channel: str, data: Any) -> None:
    del channel, data


def _drop_positioned(channel: str, data: Any, offset: int, epoch: str) -> None:
    del channel, data, offset, epoch


def _nothing() -> None:
    pass


class Subscriptions:
    """The wanted channels, kept subscribed on the current session, and delivery of what arrives.

    A channel is wanted from :meth:`subscribe` until :meth:`unsubscribe`; each new session
    subscribes all of them again (:meth:`resubscribe`). :meth:`receive` is the session's receive
    loop: it hands each message of a wanted channel to the attached deliver function (the history
    one when the envelope carries an offset).
    """

    def __init__(
        self, current: CurrentSession, names: ChannelNames, options: RedisOptions, stats: BrokerStats
    ) -> None:
        self._current = current
        self._names = names
        self._options = options
        self._stats = stats
        self._deliver: DeliverFn = _drop
        self._deliver_history: PositionedDeliverFn = _drop_positioned
        self._reconnected: Callable[[], None] = _nothing
        self.wanted: set[str] = set()
        self._expected_unsub: Counter[str] = Counter()
        self._lock = anyio.Lock()

    def attach(self, deliver: DeliverFn) -> None:
        self._deliver = deliver

    def attach_history(self, deliver: PositionedDeliverFn, reconnected: Callable[[], None]) -> None:
        self._deliver_history = deliver
        self._reconnected = reconnected

    def reconnected(self) -> None:
        """Tell the attached function that a new session has every wanted channel again."""
        try:
            self._reconnected()
        except Exception:
            log.exception("redis broker: the reconnected callback raised")

    def new_session(self) -> None:
        """Forget the unsubscribes awaited from the previous session."""
        self._expected_unsub.clear()

    async def subscribe(self, channel: str) -> None:
        name = self._names.redis(channel)
        async with self._lock:
            if channel in self.wanted:
                return
            session = self._current.live()
            self.wanted.add(channel)
            try:
                await self._on_session(session, session.pubsub.subscribe(name))
            except BaseException as exc:
                self.wanted.discard(channel)
                if isinstance(exc, Exception):
                    if leaves_connection_unknown(exc):
                        # Redis's view of this connection is unknown now: rebuild the session.
                        session.abort(exc)
                    raise BrokerUnavailable(f"subscribe {channel!r} failed: {describe(exc)}") from exc
                raise

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering ``channel`` at once; tell Redis if connected (never raises for Redis)."""
        async with self._lock:
            if channel not in self.wanted:
                return
            self.wanted.discard(channel)
            session = self._current.session
            if session is None or not session.alive:
                return  # the next session will not subscribe it
            self._expected_unsub[channel] += 1
            try:
                await self._on_session(session, session.pubsub.unsubscribe(self._names.redis(channel)))
            except Exception as exc:
                log.warning("redis broker: unsubscribe %r failed: %s", channel, describe(exc))
                if not isinstance(exc, BrokerUnavailable):
                    session.abort(exc)

    async def resubscribe(self, session: Session) -> None:
        """Subscribe every wanted channel on a new session."""
        async with self._lock:
            channels = sorted(self.wanted)
            for start in range(0, len(channels), _RESUBSCRIBE_CHUNK):
                names = [self._names.redis(ch) for ch in channels[start : start + _RESUBSCRIBE_CHUNK]]
                await self._on_session(session, session.pubsub.subscribe(*names))
            if channels:
                log.info("redis broker: resubscribed %d channels", len(channels))

    async def receive(self, session: Session, dropped: Callable[[Session, str], None]) -> None:
        """Deliver what ``session`` receives; call ``dropped`` when Redis drops a wanted channel."""
        pubsub = session.pubsub
        while True:
            message = take_buffered(pubsub)
            if message is None:
                message = await pubsub.get_message()
            if message is None:
                continue
            kind = message["type"]
            channel = self._names.local(message["channel"])
            if channel is None:
                continue
            if kind in ("message", "smessage"):
                if channel in self.wanted:
                    self._handle(channel, message["data"])
            elif kind in ("unsubscribe", "sunsubscribe"):
                if self._expected_unsub[channel] > 0:
                    self._expected_unsub[channel] -= 1
                elif channel in self.wanted and not session.draining:
                    dropped(session, f"redis unsubscribed {channel!r} on its own; resubscribing")

    def _handle(self, channel: str, data: Any) -> None:
        try:
            envelope = decode(data)
            if envelope.channel != channel:
                raise EnvelopeError(f"envelope is for channel {envelope.channel!r}")
        except EnvelopeError as exc:
            self._stats.decode_errors += 1
            log.warning("redis broker: dropped a message on %r: %s", channel, exc)
            return
        self._stats.received += 1
        try:
            if envelope.offset is None:
                self._deliver(channel, envelope.payload)
            else:
                self._deliver_history(channel, envelope.payload, envelope.offset, envelope.epoch or "")
        except Exception:
            self._stats.deliver_errors += 1
            log.exception("redis broker: deliver() raised for channel %r", channel)

    async def _on_session(self, session: Session, call: Awaitable[Any]) -> Any:
        return await on_session(session, call, self._options.subscribe_timeout)
