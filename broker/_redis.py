"""The Redis broker: standalone, Sentinel and Redis Cluster (sharded pub/sub), on coredis.

One :class:`RedisBroker` per worker. It owns a task group with a *supervisor* that runs one
**session** at a time: a fresh coredis client, one pub/sub connection, a receive loop and a
publish writer. Any failure ends the session (``ready`` turns False, pending and new publishes
fail with :class:`~hubbub.broker.BrokerUnavailable`); the supervisor logs it, waits with jittered
exponential backoff and starts a new session, which resubscribes every channel still wanted and
then turns ``ready`` True again. Nothing is retried silently and no crash is swallowed: every
session end is logged with its cause and counted in :attr:`RedisBroker.stats`.

The pieces, one module each: the target (``_redis_target``), channel names and history keys
(``_redis_names``), the session (``_redis_session``), the publisher (``_redis_publisher``), the
subscriptions and receive loop (``_redis_subscriptions``), history reads (``_redis_history``), the
history scripts (``_history_script``), the supervisor (``_redis_supervisor``) and the coredis
internals they read (``_coredis_internals``). coredis is imported lazily so that ``memory://``
works without touching it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from ._base import BrokerUnavailable, DeliverFn
from ._history import HistoryOptions, HistoryPage, PositionedDeliverFn, StreamPosition
from ._publication import new_origin
from ._redis_history import HistoryReader
from ._redis_names import ChannelNames
from ._redis_publisher import Publisher
from ._redis_session import BrokerStats, CurrentSession, RedisOptions
from ._redis_subscriptions import Subscriptions
from ._redis_supervisor import Supervisor
from ._redis_target import RedisTarget
from ._redis_values import RedisValues

__all__ = ["RedisBroker"]

log = logging.getLogger("hubbub.broker.redis")


class RedisBroker(RedisValues):
    """A :class:`~hubbub.broker.Broker` backed by Redis, with :class:`~hubbub.broker.HistoryBroker`
    and :class:`~hubbub.broker.SharedValues`.

    Use as an async context manager.

    ``async with RedisBroker(target) as broker`` starts the supervisor and waits up to
    ``connect_timeout`` for the first connection; if Redis is not there yet it returns anyway
    (``ready`` is False, publishes raise :class:`BrokerUnavailable`) and keeps trying, or with
    ``require_ready`` it closes again and raises :class:`BrokerUnavailable`.
    """

    def __init__(
        self,
        target: RedisTarget,
        *,
        prefix: str = "hubbub:",
        worker_id: str | None = None,
        connect_timeout: float = 2.0,
        publish_timeout: float = 5.0,
        subscribe_timeout: float = 5.0,
        max_batch: int = 1000,
        backoff_initial: float = 0.05,
        backoff_max: float = 5.0,
        failover_check_interval: float = 1.0,
        keepalive_interval: float = 5.0,
        require_ready: bool = False,
    ) -> None:
        self.target = target
        self.prefix = prefix
        self.worker_id = worker_id or new_origin()  # host:pid:random, readable in logs
        self.stats = BrokerStats()
        options = RedisOptions(
            connect_timeout=connect_timeout,
            publish_timeout=publish_timeout,
            subscribe_timeout=subscribe_timeout,
            max_batch=max_batch,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            failover_check_interval=failover_check_interval,
            keepalive_interval=keepalive_interval,
        )
        names = ChannelNames(prefix)
        self._connect_timeout = connect_timeout
        self._require_ready = require_ready
        self._close_timeout = max(1.0, connect_timeout)
        self._current = CurrentSession(target, self.stats)
        RedisValues.__init__(self, self._current, prefix, publish_timeout)
        self._publisher = Publisher(
            self._current,
            names,
            options,
            self.stats,
            worker_id=self.worker_id,
            cluster=target.kind == "cluster",
        )
        self._subscriptions = Subscriptions(self._current, names, options, self.stats)
        self._history = HistoryReader(self._current, names, options, self.stats)
        self._supervisor = Supervisor(
            target, options, self.stats, self._current, self._publisher, self._subscriptions
        )
        self._tg: anyio.abc.TaskGroup | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> RedisBroker:
        if self._tg is not None:
            raise RuntimeError("RedisBroker is already open")
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._supervisor.run, name=f"hubbub-redis-broker {self.target.describe()}")
        with anyio.move_on_after(self._connect_timeout):
            await self.wait_ready()
        if not self.ready and self._require_ready:
            cause = self.stats.last_error
            await self.__aexit__(None, None, None)
            raise BrokerUnavailable(
                f"{self.target.describe()} did not answer within {self._connect_timeout:g} s: {cause}"
            )
        if not self.ready:
            log.warning(
                "redis broker: %s not reachable yet (%s); continuing, will keep retrying",
                self.target.describe(),
                self.stats.last_error,
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        tg = self._tg
        interrupted: BaseException | None = None
        try:
            # Close in order (session tasks, then pub/sub, then the client) while the connections
            # are still alive; cancel everything only if that does not finish in time.
            self._supervisor.stop()
            with anyio.move_on_after(self._close_timeout):
                await self._supervisor.stopped.wait()
        except BaseException as error:  # cancelled while closing: still tear down, then re-raise
            interrupted = error
        tg.cancel_scope.cancel()
        try:
            suppress = await tg.__aexit__(exc_type, exc, tb)
        finally:
            self._tg = None
            self._supervisor.mark_down(BrokerUnavailable("broker closed"))
        if interrupted is not None:
            raise interrupted
        return suppress

    # -- Broker protocol -----------------------------------------------------------------------

    def attach(self, deliver: DeliverFn) -> None:
        self._subscriptions.attach(deliver)

    @property
    def ready(self) -> bool:
        return self._current.ready

    async def wait_ready(self) -> None:
        """Return once the broker is connected with every subscription active."""
        await self._current.wait_ready()

    def subscriptions(self) -> frozenset[str]:
        return frozenset(self._subscriptions.wanted)

    async def subscribe(self, channel: str) -> None:
        await self._subscriptions.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering ``channel`` at once; tell Redis if connected (never raises for Redis)."""
        await self._subscriptions.unsubscribe(channel)

    async def publish(self, channel: str, data: Any) -> None:
        await self._publisher.publish(channel, data)

    # -- HistoryBroker -------------------------------------------------------------------------

    def attach_history(self, deliver: PositionedDeliverFn, reconnected: Callable[[], None]) -> None:
        """Set the receiver of history publications, and the function called after a reconnect.

        ``reconnected`` runs once a new session (not the first) has every wanted channel again.
        """
        self._subscriptions.attach_history(deliver, reconnected)

    async def publish_history(self, channel: str, data: Any, options: HistoryOptions) -> StreamPosition:
        """Store, number and publish ``data`` in one script call, batched with other publishes."""
        return await self._publisher.publish_history(channel, data, options)

    async def history(
        self,
        channel: str,
        options: HistoryOptions,
        *,
        since: int | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> HistoryPage:
        """Read ``channel``'s position and stored publications in one script call."""
        return await self._history.read(channel, options, since, limit, reverse)

    async def remove_history(self, channel: str) -> None:
        """Delete ``channel``'s stored publications; its offset and epoch (the meta key) stay."""
        await self._history.remove(channel)
