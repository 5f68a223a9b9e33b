"""One Redis session (a coredis client and its pub/sub connection) and the broker's current session.

A session is opened for a :class:`~hubbub.broker.RedisTarget` by :func:`open_session` and lives
until it fails; :class:`CurrentSession` tells publishers and subscribers which session is in use,
whether the broker is ready and whether it is closing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc

from ._base import BrokerUnavailable
from ._redis_target import RedisTarget

__all__ = [
    "BrokerStats",
    "CurrentSession",
    "RedisOptions",
    "Session",
    "SessionEnded",
    "describe",
    "leaves_connection_unknown",
    "on_session",
    "open_session",
]


@dataclass(frozen=True)
class RedisOptions:
    """The timeouts and limits of a :class:`~hubbub.broker.RedisBroker` (see its constructor)."""

    connect_timeout: float = 2.0
    publish_timeout: float = 5.0
    subscribe_timeout: float = 5.0
    max_batch: int = 1000
    backoff_initial: float = 0.05
    backoff_max: float = 5.0
    failover_check_interval: float = 1.0
    keepalive_interval: float = 5.0


@dataclass
class BrokerStats:
    """Counters a worker can export as metrics."""

    published: int = 0
    publish_errors: int = 0
    publish_batches: int = 0
    received: int = 0
    decode_errors: int = 0
    deliver_errors: int = 0
    sessions: int = 0
    session_failures: int = 0
    last_error: str | None = None
    #: Sum of seconds between ``publish`` being called and Redis accepting it.
    publish_seconds_total: float = 0.0


class SessionEnded(Exception):
    """Raised inside a session to end it on purpose (server-side unsubscribe, failover...)."""


@dataclass(eq=False)
class Session:
    """One coredis client with its pub/sub connection, and the tasks that use them."""

    client: Any
    pubsub: Any
    publish: Callable[[Any, bytes, bytes], Any]
    address: tuple[str, int] | None = None
    #: The sentinel client that found ``address`` (sentinel targets only).
    sentinel: Any = None
    scope: anyio.CancelScope | None = None
    error: BaseException | None = None
    #: Cancel scopes of subscribe/unsubscribe calls waiting on this session.
    waiters: set[anyio.CancelScope] = field(default_factory=set)
    alive: bool = True
    #: Set while the writer has no batch waiting for Redis's answer.
    writer_idle: anyio.Event = field(default_factory=anyio.Event)
    tg: anyio.abc.TaskGroup | None = None
    draining: bool = False
    #: Whether the history scripts were sent with ``SCRIPT LOAD`` on this session.
    scripts_loaded: bool = False

    def __post_init__(self) -> None:
        self.writer_idle.set()

    def abort(self, error: BaseException) -> None:
        """End the session with ``error`` (the first error given is the one kept)."""
        if self.error is None:
            self.error = error
        if self.scope is not None:
            self.scope.cancel()


class CurrentSession:
    """The session in use (if any), whether the broker is ready, and whether it is closing."""

    def __init__(self, target: RedisTarget, stats: BrokerStats) -> None:
        self.session: Session | None = None
        self.ready = False
        self.closing = False
        self._ready_event = anyio.Event()
        self._target = target
        self._stats = stats

    def live(self) -> Session:
        """The session to use now; raises :class:`BrokerUnavailable` when there is none."""
        session = self.session
        if self.closing:
            raise BrokerUnavailable("broker is closed")
        if session is None or not session.alive:
            reason = f" ({self._stats.last_error})" if self._stats.last_error else ""
            raise BrokerUnavailable(f"not connected to redis at {self._target.describe()}{reason}")
        return session

    def is_closing(self) -> bool:
        """``closing``, read as a call so that a check after an ``await`` is not narrowed away."""
        return self.closing

    def set_ready(self) -> None:
        self.ready = True
        self._ready_event.set()

    def clear_ready(self) -> None:
        self.ready = False
        if self._ready_event.is_set():
            self._ready_event = anyio.Event()

    async def wait_ready(self) -> None:
        """Return once the broker is connected with every subscription active."""
        while not self.ready:
            await self._ready_event.wait()


def describe(exc: BaseException) -> str:
    """``exc`` (the first of a group) as one log line, with its cause."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    if cause is not None and not isinstance(cause, BaseExceptionGroup):
        text += f" ({type(cause).__name__}: {cause})"
    return text


async def on_session(session: Session, call: Awaitable[Any], timeout: float) -> Any:
    """Await ``call`` within ``timeout``; end it with BrokerUnavailable as soon as ``session`` ends."""
    with anyio.CancelScope() as scope:
        session.waiters.add(scope)
        try:
            with anyio.fail_after(timeout):
                return await call
        finally:
            session.waiters.discard(scope)
    raise BrokerUnavailable("connection to redis lost")


def leaves_connection_unknown(exc: BaseException) -> bool:
    """Whether a failed command may have left the connection out of step (lost, timed out).

    A command Redis refused with an error reply (an ACL denial, say) leaves the connection as it
    was: that failure belongs to the one call, never to every channel of the session.
    """
    if isinstance(exc, BrokerUnavailable):
        return False
    try:
        from coredis.exceptions import ResponseError
    except ImportError:  # pragma: no cover
        return True
    return not isinstance(exc, ResponseError)


def _publish(pipe: Any, name: bytes, data: bytes) -> Any:
    return pipe.publish(name, data)


def _spublish(pipe: Any, name: bytes, data: bytes) -> Any:
    return pipe.spublish(name, data)


async def open_session(target: RedisTarget, options: RedisOptions, stack: AsyncExitStack) -> Session:
    """Connect to ``target``: a client (checked with ``PING``) and a pub/sub, closed by ``stack``."""
    from coredis import Redis, RedisCluster, Sentinel
    from coredis.connection import TCPLocation
    from coredis.retry import NoRetryPolicy

    timeouts: dict[str, Any] = {
        "connect_timeout": options.connect_timeout,
        "stream_timeout": options.publish_timeout,
    }
    address: tuple[str, int] | None = None
    sentinel: Any = None
    client: Any
    if target.kind == "cluster":
        client = RedisCluster(
            startup_nodes=[TCPLocation(h, p) for h, p in target.nodes],
            username=target.username,
            password=target.password,
            **timeouts,
        )
    elif target.kind == "sentinel":
        assert target.service_name
        sentinel_kwargs: dict[str, Any] = dict(timeouts)
        if target.sentinel_password:
            sentinel_kwargs["password"] = target.sentinel_password
        sentinel = Sentinel([TCPLocation(h, p) for h, p in target.nodes], sentinel_kwargs=sentinel_kwargs)
        await stack.enter_async_context(sentinel)
        with anyio.fail_after(options.connect_timeout):
            address = await sentinel.discover_primary(target.service_name)
        client = Redis(
            address[0],
            address[1],
            db=target.db,
            username=target.username,
            password=target.password,
            retry_policy=NoRetryPolicy(),
            **timeouts,
        )
    else:
        client = Redis.from_url(target.url, retry_policy=NoRetryPolicy(), **timeouts)
    await stack.enter_async_context(client)
    with anyio.fail_after(options.connect_timeout):
        await client.ping()
    pubsub_options: dict[str, Any] = {
        "ignore_subscribe_messages": False,
        "retry_policy": NoRetryPolicy(),
        "subscription_timeout": options.subscribe_timeout,
        "max_idle_seconds": options.keepalive_interval,
    }
    if target.kind == "cluster":
        pubsub = client.sharded_pubsub(**pubsub_options)
        publish: Callable[[Any, bytes, bytes], Any] = _spublish
    else:
        pubsub = client.pubsub(**pubsub_options)
        publish = _publish
    # (no timeout scope around this: it opens a task group that outlives the call; the
    # connection itself is bounded by connect_timeout)
    await stack.enter_async_context(pubsub)
    return Session(client, pubsub, publish, address, sentinel)
