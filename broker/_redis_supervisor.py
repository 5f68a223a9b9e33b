"""The Redis broker's supervisor: one session at a time, rebuilt with backoff whenever it ends.

A session runs a receive loop, a publish writer and (for Sentinel) a failover watcher. Any failure
ends it: publishers and subscribers learn at once, the failure is logged and counted, and after a
jittered exponential backoff a new session resubscribes every wanted channel. A session ended on
purpose while its connections still work (the primary moved, Redis dropped a subscription) is
drained first, so nothing Redis already accepted is lost.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import anyio

from ._base import BrokerUnavailable
from ._coredis_internals import ping, pubsub_connections, push_buffers_empty
from ._redis_publisher import Publisher
from ._redis_session import (
    BrokerStats,
    CurrentSession,
    RedisOptions,
    Session,
    SessionEnded,
    describe,
    open_session,
)
from ._redis_subscriptions import Subscriptions
from ._redis_target import RedisTarget

__all__ = ["Supervisor"]

log = logging.getLogger("hubbub.broker.redis")


class Supervisor:
    """Runs sessions one after another until :meth:`stop`; :attr:`stopped` is set when it has."""

    def __init__(
        self,
        target: RedisTarget,
        options: RedisOptions,
        stats: BrokerStats,
        current: CurrentSession,
        publisher: Publisher,
        subscriptions: Subscriptions,
    ) -> None:
        self._target = target
        self._options = options
        self._stats = stats
        self._current = current
        self._publisher = publisher
        self._subscriptions = subscriptions
        self._reached_ready = False
        #: Whether some session was ready before (the next one to be ready is a reconnect).
        self._was_ready = False
        self._idle_scope = anyio.CancelScope()
        self.stopped = anyio.Event()

    async def run(self) -> None:
        """Run sessions until the broker closes."""
        try:
            await self._loop()
        finally:
            self.stopped.set()

    def stop(self) -> None:
        """Start closing: end the current session and stop waiting to retry."""
        self._current.closing = True
        if self._current.session is not None:
            self._current.session.abort(BrokerUnavailable("broker closed"))
        self._idle_scope.cancel()

    def mark_down(self, error: BaseException) -> None:
        """No session now: fail what waits on the last one and every queued publish."""
        session, self._current.session = self._current.session, None
        self._current.clear_ready()
        failure = BrokerUnavailable(f"connection to redis lost: {describe(error)}")
        if session is not None:
            session.alive = False
            for scope in list(session.waiters):
                scope.cancel()
        self._publisher.fail_pending(failure)

    async def _loop(self) -> None:
        attempt = 0
        while not self._current.closing:
            self._stats.sessions += 1
            self._reached_ready = False
            error: BaseException
            try:
                await self._run_session()
                error = BrokerUnavailable("session ended")
            except Exception as exc:
                error = exc
            self.mark_down(error)
            if self._current.is_closing():
                return
            self._stats.session_failures += 1
            self._stats.last_error = describe(error)
            if self._reached_ready:
                attempt = 0
            delay = min(self._options.backoff_max, self._options.backoff_initial * 2**attempt)
            delay *= 0.5 + random.random() / 2
            attempt += 1
            log.warning(
                "redis broker: %s %s (%s); retrying in %.2fs",
                "lost connection to" if self._reached_ready else "cannot connect to",
                self._target.describe(),
                self._stats.last_error,
                delay,
                exc_info=None if _is_connection_error(error) else error,
            )
            with self._idle_scope:
                await anyio.sleep(delay)
            self._idle_scope = anyio.CancelScope()

    async def _run_session(self) -> None:
        """Run one session until it fails (it always ends with an exception)."""
        async with AsyncExitStack() as stack:
            session = await open_session(self._target, self._options, stack)
            if self._current.is_closing():
                raise BrokerUnavailable("broker closed")
            async with anyio.create_task_group() as tg:
                session.scope = tg.cancel_scope
                session.tg = tg
                self._current.session = session
                self._subscriptions.new_session()
                try:
                    tg.start_soon(self._guard, session, self._receive)
                    tg.start_soon(self._guard, session, self._publisher.write)
                    if session.sentinel is not None:
                        tg.start_soon(self._guard, session, self._watch_failover)
                    await self._subscriptions.resubscribe(session)
                    self._reached_ready = True
                    self._current.set_ready()
                    log.info(
                        "redis broker: ready on %s (%d channels)",
                        self._target.describe(),
                        len(self._subscriptions.wanted),
                    )
                    if self._was_ready:
                        self._subscriptions.reconnected()
                    self._was_ready = True
                    await anyio.sleep_forever()
                finally:
                    # Fail fast: publishers and subscribers learn now, not after the teardown.
                    self.mark_down(session.error or BrokerUnavailable("connection lost"))
            raise session.error or BrokerUnavailable("session ended")

    async def _guard(self, session: Session, task: Callable[[Session], Awaitable[None]]) -> None:
        try:
            await task(session)
        except Exception as exc:
            if session.error is None:
                session.error = exc
            raise

    async def _receive(self, session: Session) -> None:
        await self._subscriptions.receive(session, self._end_after_drain)

    def _end_after_drain(self, session: Session, reason: str) -> None:
        """Redis dropped a subscription we still need (cluster slot moved, ...): end the session
        once what was already sent to us has been delivered."""
        if session.tg is None:
            return

        async def end(session: Session) -> None:
            await self._drain(session)
            raise SessionEnded(reason)

        session.tg.start_soon(self._guard, session, end)

    async def _drain(self, session: Session) -> None:
        """Wind a session down without losing what Redis already accepted.

        Used when the session ends on purpose (primary moved, Redis dropped a subscription) while
        its connections still work: new publishes and subscribes fail with BrokerUnavailable at
        once, the batch in flight gets its answer, then a PING on every pub/sub connection makes
        sure each message Redis sent before it (so every publish that returned) is delivered
        before the receive loop is torn down. Bounded by ``subscribe_timeout``.
        """
        if session.draining:
            return
        session.draining = True
        session.alive = False
        self._current.clear_ready()
        with anyio.move_on_after(self._options.subscribe_timeout):
            await session.writer_idle.wait()
            pubsub = session.pubsub
            connections = pubsub_connections(pubsub)
            async with anyio.create_task_group() as tg:
                for connection in connections:
                    tg.start_soon(ping, connection)
            while not push_buffers_empty(pubsub, connections):  # noqa: ASYNC110 -- coredis has no event for it
                await anyio.sleep(0.001)

    async def _watch_failover(self, session: Session) -> None:
        """Ask the sentinels for the primary every ``failover_check_interval``; end the session
        (drained) when it moved."""
        service = self._target.service_name
        while True:
            await anyio.sleep(self._options.failover_check_interval)
            try:
                with anyio.fail_after(self._options.connect_timeout):
                    address = await session.sentinel.discover_primary(service)
            except Exception as exc:  # sentinels unreachable: keep the data connection
                log.debug("redis broker: sentinel check failed: %s", describe(exc))
                continue
            if tuple(address) != session.address:
                await self._drain(session)
                raise SessionEnded(f"sentinel failover: primary moved to {address[0]}:{address[1]}")


def _is_connection_error(exc: BaseException) -> bool:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, (BrokerUnavailable, SessionEnded, OSError, TimeoutError)):
        return True
    try:
        from coredis.exceptions import ConnectionError as RedisConnectionError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, RedisConnectionError)
