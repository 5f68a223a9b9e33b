"""The Redis broker: standalone, Sentinel and Redis Cluster (sharded pub/sub), on coredis.

One :class:`RedisBroker` per worker. It owns a task group with a *supervisor* that runs one
**session** at a time: a fresh coredis client, one pub/sub connection, a receive loop and a
publish writer. Any failure ends the session (``ready`` turns False, pending and new publishes
fail with :class:`~hubbub.broker.BrokerUnavailable`); the supervisor logs it, waits with jittered
exponential backoff and starts a new session, which resubscribes every channel still wanted and
then turns ``ready`` True again. Nothing is retried silently and no crash is swallowed: every
session end is logged with its cause and counted in :attr:`RedisBroker.stats`.

coredis is imported lazily so that ``memory://`` works without touching it.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import random
import socket
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import anyio
import anyio.abc

from ._base import BrokerUnavailable, DeliverFn
from ._envelope import Envelope, EnvelopeError, decode, encode

__all__ = ["BrokerStats", "RedisBroker", "RedisTarget", "default_worker_id", "redact_url"]

log = logging.getLogger("hubbub.broker.redis")

#: How many channels one (S)SUBSCRIBE call carries when a session resubscribes.
_RESUBSCRIBE_CHUNK = 500


def default_worker_id() -> str:
    """``host:pid:random`` — unique per broker instance, readable in logs."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


@dataclass(frozen=True)
class RedisTarget:
    """Where and how to reach Redis; built from a URL by :func:`hubbub.broker.parse_redis_url`."""

    kind: Literal["standalone", "sentinel", "cluster"]
    #: standalone: the ``redis://``/``rediss://`` URL, handed to coredis unchanged.
    url: str = ""
    #: sentinel: the sentinels; cluster: the startup nodes.
    nodes: tuple[tuple[str, int], ...] = ()
    service_name: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None

    def describe(self) -> str:
        """A log-safe description (no password)."""
        if self.kind == "standalone":
            return redact_url(self.url)
        hosts = ",".join(f"{h}:{p}" for h, p in self.nodes)
        if self.kind == "sentinel":
            return f"sentinel {hosts} service {self.service_name!r} db {self.db}"
        return f"cluster {hosts}"


#: Query parameters of a broker URL whose values are shown in logs; every other value is hidden.
_SHOWN_QUERY_KEYS = frozenset({"db", "service_name", "protocol_version"})


def redact_url(url: str) -> str:
    """``url`` safe for a log line: no password in the user info, no query value that may be secret."""
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, hosts = netloc.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{hosts}" if colon else f"{user}@{hosts}"
    query = "&".join(
        f"{key}={value if key in _SHOWN_QUERY_KEYS else '***'}"
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


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


@dataclass(eq=False)
class _Pending:
    name: bytes
    data: bytes
    done: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None
    abandoned: bool = False

    def finish(self, error: BaseException | None = None) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()


class _SessionEnded(Exception):
    """Raised inside a session to end it on purpose (server-side unsubscribe, failover...)."""


@dataclass(eq=False)
class _Session:
    client: Any
    pubsub: Any
    publish: Callable[[Any, bytes, bytes], Any]
    address: tuple[str, int] | None = None
    scope: anyio.CancelScope | None = None
    error: BaseException | None = None
    #: Cancel scopes of subscribe/unsubscribe calls waiting on this session.
    waiters: set[anyio.CancelScope] = field(default_factory=set)
    alive: bool = True
    #: Set while the writer has no batch waiting for Redis's answer.
    writer_idle: anyio.Event = field(default_factory=anyio.Event)
    tg: anyio.abc.TaskGroup | None = None
    draining: bool = False

    def __post_init__(self) -> None:
        self.writer_idle.set()

    def abort(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        if self.scope is not None:
            self.scope.cancel()


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    if cause is not None and not isinstance(cause, BaseExceptionGroup):
        text += f" ({type(cause).__name__}: {cause})"
    return text


def _publish(pipe: Any, name: bytes, data: bytes) -> Any:
    return pipe.publish(name, data)


def _spublish(pipe: Any, name: bytes, data: bytes) -> Any:
    return pipe.spublish(name, data)


def _drop(channel: str, data: Any) -> None:
    del channel, data


class RedisBroker:
    """A :class:`~hubbub.broker.Broker` backed by Redis. Use as an async context manager.

    ``async with RedisBroker(target) as broker`` starts the supervisor and waits up to
    ``connect_timeout`` for the first connection; if Redis is not there yet it returns anyway
    (``ready`` is False, publishes raise :class:`BrokerUnavailable`) and keeps trying.
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
    ) -> None:
        self.target = target
        self.prefix = prefix
        self.worker_id = worker_id or default_worker_id()
        self.stats = BrokerStats()
        self._prefix_bytes = prefix.encode()
        self._connect_timeout = connect_timeout
        self._publish_timeout = publish_timeout
        self._subscribe_timeout = subscribe_timeout
        self._max_batch = max_batch
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._failover_check_interval = failover_check_interval
        self._keepalive_interval = keepalive_interval

        self._deliver: DeliverFn = _drop
        self._wanted: set[str] = set()
        self._expected_unsub: Counter[str] = Counter()
        self._sub_lock = anyio.Lock()
        self._queue: deque[_Pending] = deque()
        self._queue_event = anyio.Event()
        self._seq = itertools.count()

        self._session: _Session | None = None
        self._ready = False
        self._ready_event = anyio.Event()
        self._closing = False
        self._reached_ready = False
        self._close_timeout = max(1.0, connect_timeout)
        self._idle_scope = anyio.CancelScope()
        self._stopped = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> RedisBroker:
        if self._tg is not None:
            raise RuntimeError("RedisBroker is already open")
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._supervise, name=f"hubbub-redis-broker {self.target.describe()}")
        with anyio.move_on_after(self._connect_timeout):
            await self.wait_ready()
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
        self._closing = True
        interrupted: BaseException | None = None
        try:
            # Close in order (session tasks, then pub/sub, then the client) while the connections
            # are still alive; cancel everything only if that does not finish in time.
            if self._session is not None:
                self._session.abort(BrokerUnavailable("broker closed"))
            self._idle_scope.cancel()
            with anyio.move_on_after(self._close_timeout):
                await self._stopped.wait()
        except BaseException as error:  # cancelled while closing: still tear down, then re-raise
            interrupted = error
        tg.cancel_scope.cancel()
        try:
            suppress = await tg.__aexit__(exc_type, exc, tb)
        finally:
            self._tg = None
            self._mark_down(BrokerUnavailable("broker closed"))
        if interrupted is not None:
            raise interrupted
        return suppress

    # -- Broker protocol -----------------------------------------------------------------------

    def attach(self, deliver: DeliverFn) -> None:
        self._deliver = deliver

    @property
    def ready(self) -> bool:
        return self._ready

    async def wait_ready(self) -> None:
        """Return once the broker is connected with every subscription active."""
        while not self._ready:
            await self._ready_event.wait()

    def subscriptions(self) -> frozenset[str]:
        return frozenset(self._wanted)

    async def subscribe(self, channel: str) -> None:
        name = self._redis_name(channel)
        async with self._sub_lock:
            if channel in self._wanted:
                return
            session = self._live_session()
            self._wanted.add(channel)
            try:
                await self._on_session(session, session.pubsub.subscribe(name))
            except BaseException as exc:
                self._wanted.discard(channel)
                if isinstance(exc, Exception):
                    if _leaves_connection_unknown(exc):
                        # Redis's view of this connection is unknown now: rebuild the session.
                        session.abort(exc)
                    raise BrokerUnavailable(f"subscribe {channel!r} failed: {_describe(exc)}") from exc
                raise

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering ``channel`` at once; tell Redis if connected (never raises for Redis)."""
        async with self._sub_lock:
            if channel not in self._wanted:
                return
            self._wanted.discard(channel)
            session = self._session
            if session is None or not session.alive:
                return  # the next session will not subscribe it
            self._expected_unsub[channel] += 1
            try:
                await self._on_session(session, session.pubsub.unsubscribe(self._redis_name(channel)))
            except Exception as exc:
                log.warning("redis broker: unsubscribe %r failed: %s", channel, _describe(exc))
                if not isinstance(exc, BrokerUnavailable):
                    session.abort(exc)

    async def publish(self, channel: str, data: Any) -> None:
        self._live_session()
        started = time.monotonic()
        envelope = Envelope.new(channel, data, publish_id=next(self._seq), origin=self.worker_id)
        item = _Pending(self._redis_name(channel), encode(envelope))
        self._queue.append(item)
        self._queue_event.set()
        try:
            with anyio.fail_after(self._publish_timeout):
                await item.done.wait()
        except TimeoutError:
            item.abandoned = True
            self.stats.publish_errors += 1
            raise BrokerUnavailable(
                f"redis did not accept the publish on {channel!r} within {self._publish_timeout}s"
            ) from None
        except BaseException:
            item.abandoned = True
            raise
        if item.error is not None:
            self.stats.publish_errors += 1
            if isinstance(item.error, BrokerUnavailable):
                raise BrokerUnavailable(str(item.error))
            raise BrokerUnavailable(f"publish on {channel!r} failed: {_describe(item.error)}") from item.error
        self.stats.published += 1
        self.stats.publish_seconds_total += time.monotonic() - started

    # -- helpers -------------------------------------------------------------------------------

    def _redis_name(self, channel: str) -> bytes:
        try:
            return self._prefix_bytes + channel.encode()
        except UnicodeEncodeError:  # a lone surrogate: see _not_unicode_name
            return self._prefix_bytes + _not_unicode_name(channel)

    def _local_name(self, name: Any) -> str | None:
        if isinstance(name, str):
            name = name.encode()
        if not isinstance(name, bytes) or not name.startswith(self._prefix_bytes):
            return None
        rest = name[len(self._prefix_bytes) :]
        try:
            return rest.decode()
        except UnicodeDecodeError:
            pass
        tag_end = rest.find(b"}")
        if not rest.startswith(b"{") or tag_end < 0:
            return None
        try:
            return rest[tag_end + 1 :].decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return None

    def _live_session(self) -> _Session:
        session = self._session
        if self._closing:
            raise BrokerUnavailable("broker is closed")
        if session is None or not session.alive:
            reason = f" ({self.stats.last_error})" if self.stats.last_error else ""
            raise BrokerUnavailable(f"not connected to redis at {self.target.describe()}{reason}")
        return session

    async def _on_session(self, session: _Session, call: Awaitable[Any]) -> Any:
        """Await ``call``; end it with BrokerUnavailable as soon as ``session`` ends."""
        with anyio.CancelScope() as scope:
            session.waiters.add(scope)
            try:
                with anyio.fail_after(self._subscribe_timeout):
                    return await call
            finally:
                session.waiters.discard(scope)
        raise BrokerUnavailable("connection to redis lost")

    def _is_closing(self) -> bool:
        return self._closing

    def _set_ready(self) -> None:
        self._ready = True
        self._ready_event.set()

    def _mark_down(self, error: BaseException) -> None:
        session, self._session = self._session, None
        self._ready = False
        if self._ready_event.is_set():
            self._ready_event = anyio.Event()
        failure = BrokerUnavailable(f"connection to redis lost: {_describe(error)}")
        if session is not None:
            session.alive = False
            for scope in list(session.waiters):
                scope.cancel()
        while self._queue:
            self._queue.popleft().finish(failure)

    # -- supervisor and session ----------------------------------------------------------------

    async def _supervise(self) -> None:
        try:
            await self._supervise_loop()
        finally:
            self._stopped.set()

    async def _supervise_loop(self) -> None:
        attempt = 0
        while not self._closing:
            self.stats.sessions += 1
            self._reached_ready = False
            error: BaseException
            try:
                await self._run_session()
                error = BrokerUnavailable("session ended")
            except Exception as exc:
                error = exc
            self._mark_down(error)
            if self._is_closing():
                return
            self.stats.session_failures += 1
            self.stats.last_error = _describe(error)
            if self._reached_ready:
                attempt = 0
            delay = min(self._backoff_max, self._backoff_initial * 2**attempt)
            delay *= 0.5 + random.random() / 2
            attempt += 1
            log.warning(
                "redis broker: %s %s (%s); retrying in %.2fs",
                "lost connection to" if self._reached_ready else "cannot connect to",
                self.target.describe(),
                self.stats.last_error,
                delay,
                exc_info=None if _is_connection_error(error) else error,
            )
            with self._idle_scope:
                await anyio.sleep(delay)
            self._idle_scope = anyio.CancelScope()

    async def _run_session(self) -> None:
        """Run one session until it fails (it always ends with an exception)."""
        async with AsyncExitStack() as stack:
            session, watchers = await self._open(stack)
            if self._is_closing():
                raise BrokerUnavailable("broker closed")
            async with anyio.create_task_group() as tg:
                session.scope = tg.cancel_scope
                session.tg = tg
                self._session = session
                self._expected_unsub.clear()
                try:
                    tg.start_soon(self._guard, session, self._receiver)
                    tg.start_soon(self._guard, session, self._writer)
                    for watcher in watchers:
                        tg.start_soon(self._guard, session, watcher)
                    await self._resubscribe(session)
                    self._reached_ready = True
                    self._set_ready()
                    log.info(
                        "redis broker: ready on %s (%d channels)",
                        self.target.describe(),
                        len(self._wanted),
                    )
                    await anyio.sleep_forever()
                finally:
                    # Fail fast: publishers and subscribers learn now, not after the teardown.
                    self._mark_down(session.error or BrokerUnavailable("connection lost"))
            raise session.error or BrokerUnavailable("session ended")

    async def _guard(self, session: _Session, task: Callable[[_Session], Awaitable[None]]) -> None:
        try:
            await task(session)
        except Exception as exc:
            if session.error is None:
                session.error = exc
            raise

    async def _open(
        self, stack: AsyncExitStack
    ) -> tuple[_Session, list[Callable[[_Session], Awaitable[None]]]]:
        from coredis import Redis, RedisCluster, Sentinel
        from coredis.connection import TCPLocation
        from coredis.retry import NoRetryPolicy

        target = self.target
        timeouts: dict[str, Any] = {
            "connect_timeout": self._connect_timeout,
            "stream_timeout": self._publish_timeout,
        }
        watchers: list[Callable[[_Session], Awaitable[None]]] = []
        address: tuple[str, int] | None = None
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
            with anyio.fail_after(self._connect_timeout):
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
            watchers.append(self._failover_watcher(sentinel, target.service_name))
        else:
            client = Redis.from_url(target.url, retry_policy=NoRetryPolicy(), **timeouts)
        await stack.enter_async_context(client)
        with anyio.fail_after(self._connect_timeout):
            await client.ping()
        pubsub_options: dict[str, Any] = {
            "ignore_subscribe_messages": False,
            "retry_policy": NoRetryPolicy(),
            "subscription_timeout": self._subscribe_timeout,
            "max_idle_seconds": self._keepalive_interval,
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
        return _Session(client, pubsub, publish, address), watchers

    async def _resubscribe(self, session: _Session) -> None:
        async with self._sub_lock:
            channels = sorted(self._wanted)
            for start in range(0, len(channels), _RESUBSCRIBE_CHUNK):
                names = [self._redis_name(ch) for ch in channels[start : start + _RESUBSCRIBE_CHUNK]]
                await self._on_session(session, session.pubsub.subscribe(*names))
            if channels:
                log.info("redis broker: resubscribed %d channels", len(channels))

    async def _receiver(self, session: _Session) -> None:
        pubsub = session.pubsub
        while True:
            message = await pubsub.get_message()
            if message is None:
                continue
            kind = message["type"]
            channel = self._local_name(message["channel"])
            if channel is None:
                continue
            if kind in ("message", "smessage"):
                if channel in self._wanted:
                    self._handle(channel, message["data"])
            elif kind in ("unsubscribe", "sunsubscribe"):
                if self._expected_unsub[channel] > 0:
                    self._expected_unsub[channel] -= 1
                elif channel in self._wanted and not session.draining and session.tg is not None:
                    # Redis dropped a subscription we still need (cluster slot moved, ...): end
                    # the session once what was already sent to us has been delivered.
                    reason = f"redis unsubscribed {channel!r} on its own; resubscribing"
                    session.tg.start_soon(self._guard, session, self._end_after_drain(reason))

    def _handle(self, channel: str, data: Any) -> None:
        try:
            envelope = decode(data)
            if envelope.channel != channel:
                raise EnvelopeError(f"envelope is for channel {envelope.channel!r}")
        except EnvelopeError as exc:
            self.stats.decode_errors += 1
            log.warning("redis broker: dropped a message on %r: %s", channel, exc)
            return
        self.stats.received += 1
        try:
            self._deliver(channel, envelope.payload)
        except Exception:
            self.stats.deliver_errors += 1
            log.exception("redis broker: deliver() raised for channel %r", channel)

    async def _writer(self, session: _Session) -> None:
        queue = self._queue
        while True:
            if not session.alive:  # draining: what is still queued fails with the session
                await anyio.sleep_forever()
            while not queue:
                if self._queue_event.is_set():
                    self._queue_event = anyio.Event()
                await self._queue_event.wait()
            batch: list[_Pending] = []
            while queue and len(batch) < self._max_batch:
                item = queue.popleft()
                if not item.abandoned:
                    batch.append(item)
            if not batch:
                continue
            session.writer_idle = anyio.Event()
            shards = _shard_names(session, batch) if self.target.kind == "cluster" else None
            try:
                async with session.client.pipeline(
                    transaction=False, raise_on_error=False, timeout=self._publish_timeout
                ) as pipe:
                    for item in batch:
                        session.publish(pipe, item.name, item.data)
                results = pipe.results
            except BaseException as exc:
                for item in batch:
                    item.finish(exc)
                raise
            finally:
                session.writer_idle.set()
            self.stats.publish_batches += 1
            moved = _moved(session, batch, shards) if shards is not None else set()
            for i, (item, result) in enumerate(zip(batch, results, strict=True)):
                if i in moved:
                    # coredis followed a MOVED redirect: the slot changed owner during the publish,
                    # so the subscribers on the old shard (this worker's included) may not have it.
                    item.finish(BrokerUnavailable("the channel's cluster slot moved during the publish"))
                else:
                    item.finish(result if isinstance(result, BaseException) else None)

    def _end_after_drain(self, reason: str) -> Callable[[_Session], Awaitable[None]]:
        async def end(session: _Session) -> None:
            await self._drain(session)
            raise _SessionEnded(reason)

        return end

    async def _drain(self, session: _Session) -> None:
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
        self._ready = False
        if self._ready_event.is_set():
            self._ready_event = anyio.Event()
        with anyio.move_on_after(self._subscribe_timeout):
            await session.writer_idle.wait()
            pubsub = session.pubsub
            shards = getattr(pubsub, "shard_connections", None)
            connections = list(shards.values()) if isinstance(shards, dict) else [pubsub.connection]
            async with anyio.create_task_group() as tg:
                for connection in connections:
                    tg.start_soon(_ping, connection)
            while not _push_buffers_empty(pubsub, connections):  # noqa: ASYNC110 -- coredis has no event for it
                await anyio.sleep(0.001)

    def _failover_watcher(self, sentinel: Any, service: str) -> Callable[[_Session], Awaitable[None]]:
        async def watch(session: _Session) -> None:
            while True:
                await anyio.sleep(self._failover_check_interval)
                try:
                    with anyio.fail_after(self._connect_timeout):
                        address = await sentinel.discover_primary(service)
                except Exception as exc:  # sentinels unreachable: keep the data connection
                    log.debug("redis broker: sentinel check failed: %s", _describe(exc))
                    continue
                if tuple(address) != session.address:
                    await self._drain(session)
                    raise _SessionEnded(f"sentinel failover: primary moved to {address[0]}:{address[1]}")

        return watch


def _shard_names(session: _Session, batch: list[_Pending]) -> list[str | None]:
    """The cluster node that owns each item's channel, per the client's slot map."""
    from coredis._utils import hash_slot

    layout = session.client.connection_pool.cluster_layout
    names: list[str | None] = []
    for item in batch:
        try:
            names.append(layout.node_for_slot(hash_slot(item.name)).name)
        except Exception:
            names.append(None)
    return names


def _moved(session: _Session, batch: list[_Pending], before: list[str | None]) -> set[int]:
    after = _shard_names(session, batch)
    return {i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b}


async def _ping(connection: Any) -> None:
    await connection.create_request(b"PING")


def _push_buffers_empty(pubsub: Any, connections: list[Any]) -> bool:
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


def _not_unicode_name(channel: str) -> bytes:
    """The Redis name of a channel whose name is not valid Unicode (it holds a lone surrogate).

    The name travels as its UTF-8 form (``surrogatepass``) behind a hash tag of its digest: a
    cluster client computes the slot of a name it has to decode, and decoding invalid UTF-8 is
    lossy, so the tag (plain ASCII) gives client and server the same slot. A valid name never
    gets the tag, and a tagged name never decodes as UTF-8, so the mapping is one to one.
    """
    raw = channel.encode("utf-8", "surrogatepass")
    return b"{" + hashlib.blake2s(raw, digest_size=6).hexdigest().encode() + b"}" + raw


def _leaves_connection_unknown(exc: BaseException) -> bool:
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


def _is_connection_error(exc: BaseException) -> bool:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, (BrokerUnavailable, _SessionEnded, OSError, TimeoutError)):
        return True
    try:
        from coredis.exceptions import ConnectionError as RedisConnectionError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, RedisConnectionError)
