"""A hubbub worker: builds the layers (transport, sessions, hub, publisher) and wires them together.

I/O is done on plain non-blocking sockets with the loop's ``wait_readable``/``wait_writable``
(trio's, or asyncio's through :mod:`._loop`; see :mod:`._transport`). One task per connection reads; nothing else runs per connection unless a
procedure, a receiver or a backed-up write needs it. One timer task for the whole worker sends
pings and enforces the handshake, pong and close deadlines.
"""

from __future__ import annotations

import logging
import socket as stdsocket
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import trio
from websockets.http11 import Response

from hubbub.broker import Broker, ChannelRules, HistoryBroker
from hubbub.protocol import CloseCode, JsonCodec, get_codec

from ._admission import upgrade_refusal
from ._api.wiring import DOCUMENT_PATH, ServerApi, WorkerView, is_api_request
from ._api.wiring import PREFIX as API_PREFIX
from ._app import App
from ._app_errors import log_app_failure
from ._config import ServerConfig
from ._connection_log import connection_class, log_closed, log_opened, trace_frames
from ._hub import Hub
from ._loop import Loop, Spawner, expect_running, for_name
from ._middleware import MiddlewareLine
from ._publisher import Publisher
from ._recovery import HistoryChannels
from ._session.events import process
from ._session.session import Session, SessionParts
from ._stats import ServerStats
from ._status import STATUS_PATHS, status_answer
from ._transport.connection import RECV_SIZE, ConnectionParts, WsConnection
from ._transport.flow import FlowControl
from ._transport.framing import frame_message
from ._transport.handshake import PlainHttp, upgrade
from ._transport.http import HttpRequest, not_the_websocket_path, plain_response
from ._transport.link import Link
from ._transport.listen import accept_loop, bind_listener
from ._transport.outbound import WriteBatch
from ._transport.timers import Timers
from ._transport.tls import tls_terminator
from ._transport.upgrade import KnownUpgrades
from ._users import UserIndex
from .auth import JwtAuth

__all__ = ["Server", "ServerStats", "bind_listener"]

log = logging.getLogger("hubbub.server")


class Server:
    """One worker process serving an :class:`App` over SocketCluster's protocol."""

    def __init__(self, app: App, config: ServerConfig, broker: Broker) -> None:
        self.app = app
        self.config = config
        self.broker = broker
        self.codec = get_codec(config.codec)
        #: Takes publications to the broker (clients' and the app's).
        self.publisher = Publisher(broker, ChannelRules(config.channels.rules + app.channel_rules))
        self.stats = ServerStats()
        #: The event loop this worker runs on (``config.loop``).
        self.loop = for_name(config.loop)
        self.timers = Timers(
            config.ping_interval,
            config.handshake_timeout,
            config.close_timeout,
            frame_message("" if config.protocol_version == 2 else "#1"),
            self.loop,
        )
        #: Congestion of this worker's outbound buffers, checked at every timer tick.
        self.flow = FlowControl(
            hard_limit=max(config.outbound_hard_limit, config.outbound_limit),
            stall_timeout=config.slow_consumer_timeout,
            worker_limit=config.worker_outbound_limit,
            loop=self.loop,
        )
        self.timers.on_tick = self.flow.check
        #: What this worker's connections share (limits, timers, the loop).
        self.links = _connection_parts(config, self.timers, self.stats, self.flow, self.spawn, self.loop)
        self._sessions: SessionParts | None = None
        #: The channels with history, while serving (None when no channel rule gives any).
        self.history: HistoryChannels | None = None
        self._nursery: Spawner | None = None
        self._accepting = True
        self._known_upgrades = KnownUpgrades()
        #: This worker's number in a cluster (shown by /health and the metrics), None when alone.
        self.worker_id: int | None = None
        #: Renders /metrics as (body, content type); installed by hubbub.cluster._metrics.
        self.metrics: Callable[[], tuple[bytes, str]] | None = None
        #: The users of this worker's connections, by their tokens' ``user_claim``.
        self.users: UserIndex[Session] = UserIndex(config.user_claim)
        #: The HTTP server API while serving (with an ``api_key``), else None.
        self.api: ServerApi | None = None
        #: False when the API has a listener of its own (``api_port``): the main port does not serve it.
        self.api_on_main_port = True
        self.tls = tls_terminator(config)  # decrypts the main port's connections (tls_cert)
        app.bind(self.publisher)

    @property
    def hub(self) -> Hub:
        assert self._sessions is not None, "the server is not running"
        return self._sessions.hub

    @property
    def running(self) -> bool:
        return self._sessions is not None

    @property
    def connection_count(self) -> int:
        """Open connections (past the SocketCluster handshake, not yet ended)."""
        return self.timers.open_count

    # -- running ---------------------------------------------------------------------------

    async def serve(
        self,
        listener: stdsocket.socket | None,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run the app's startup hooks, then accept and serve connections on ``listener`` until cancelled.

        Without a listener the worker serves the connections an ASGI server hands it (:mod:`._asgi`).
        """
        expect_running(self.loop)
        await self.app.run_startup()
        async with self.loop.open_nursery() as nursery:
            self._nursery = nursery
            self._sessions = self._session_parts(nursery)
            if self.config.api_key:
                view = WorkerView(lambda: self.worker_id, lambda: self.connection_count, self.hub, self.users)
                self.api = ServerApi(self.config, self.broker, self.publisher, view, nursery)
                nursery.start_soon(self.api.run)
            nursery.start_soon(self.links.write_batch.run)
            nursery.start_soon(self.timers.run)
            if listener is not None:
                handle = self._connection if self.tls is None else self.tls.wrap(self._connection)
                nursery.start_soon(accept_loop, listener, handle, nursery, lambda: self._accepting)
            task_status.started()

    def _session_parts(self, nursery: Spawner) -> SessionParts:
        chains = self.app.middleware_chains
        hub = Hub(self.broker, nursery, chains[MiddlewareLine.OUTBOUND], self.codec)
        read_publish = self.codec.read_publish if isinstance(self.codec, JsonCodec) else None
        history = None
        if self.publisher.rules.any_history:
            assert isinstance(self.broker, HistoryBroker)  # the publisher checked
            history = self.history = HistoryChannels(hub, self.broker, nursery)
        return SessionParts(
            config=self.config,
            codec=self.codec,
            auth=JwtAuth(self.config.auth_key, default_expiry=self.config.auth_default_expiry),
            app=self.app,
            hub=hub,
            publisher=self.publisher,
            stats=self.stats,
            inbound_raw_chain=chains[MiddlewareLine.INBOUND_RAW],
            inbound_chain=chains[MiddlewareLine.INBOUND],
            outbound_chain=chains[MiddlewareLine.OUTBOUND],
            read_publish=read_publish,
            publishes_inline=read_publish is not None and self.publisher.inline,
            process=process,
            opened=self._opened,
            flow=self.flow,
            history=history,
            users=self.users,
            loop=self.loop,
        )

    async def shutdown(self, code: int = CloseCode.SERVER_SHUTDOWN, timeout: float | None = None) -> None:
        """Stop accepting, close every socket with ``code``, wait for them (bounded), run the shutdown hooks."""
        self._accepting = False
        if self.api is not None:
            await self.api.leave()
        for conn in self.timers.live():
            conn.disconnect(code, "Server is shutting down")
        with anyio.move_on_after(timeout if timeout is not None else self.config.close_timeout + 1):
            await self.timers.wait_all_closed()
        await self.app.run_shutdown()

    # -- one connection --------------------------------------------------------------------

    async def _connection(self, raw: stdsocket.socket, address: Any) -> None:
        self.stats.connections_total += 1
        conn: WsConnection | None = None
        session: Session | None = None
        timers = self.timers
        try:
            # The timer task enforces the handshake timeout of the HTTP phase (no cancel scope
            # per connection): it wakes the waiting read with ClosedResourceError.
            timers.upgrading(raw)
            remote = address if isinstance(address, tuple) else None
            api = self.api if self.api_on_main_port else None
            plain = is_api_request if api is not None else None
            try:
                upgraded = await upgrade(
                    raw,
                    remote,
                    self.links.recv_view,
                    self._known_upgrades,
                    (self.config.max_request_head, self.config.max_payload),  # not kept in this frame
                    self._answer,
                    plain,
                )
            except trio.ClosedResourceError:
                upgraded = None
            if not timers.upgraded(raw):  # timed out meanwhile
                upgraded = None
            if isinstance(upgraded, PlainHttp):
                assert api is not None
                await api.exchanges.serve(raw, upgraded.received)
            elif upgraded is not None and self._sessions is not None:
                http_request, leftover = upgraded
                del upgraded  # this frame lives as long as the connection: it keeps only what it uses
                conn = connection_class()(raw, self.links)
                session = self.start_session(conn, http_request)
                await conn.run(leftover)
        except Exception:
            log.exception("connection from %s failed", address)
        finally:
            if conn is not None and session is not None:
                self.forget(conn, session)
            if conn is None or conn.outbound_backlog:  # else no task can be waiting on the socket
                self.loop.notify_closing(raw)
            else:
                self.loop.forget_reader(raw)  # the read loop's registration (asyncio)
            raw.close()

    def status_response(self, path: str, *, public: bool = False) -> Response | None:
        """The answer to a status path; ``public``: on the main port (details only with ``public_metrics``)."""
        if path not in STATUS_PATHS:
            return None
        details = not public or self.config.public_metrics
        ready = self.broker.ready and self._accepting
        return status_answer(
            path,
            details=details,
            connections=self.connection_count,
            worker_id=self.worker_id,
            ready=ready,
            metrics=self.metrics,
        )

    async def _answer(self, http_request: HttpRequest) -> Response | None:
        """The HTTP response to a request that must not become a WebSocket, else None."""
        path = http_request.path
        status = self.status_response(path, public=True)
        if status is not None:
            return status
        if path.startswith(API_PREFIX) and self.api is not None and self.api_on_main_port:
            if path == DOCUMENT_PATH:
                return plain_response(200, "OK", self.api.service.document, "application/json")
            return plain_response(405, "Method Not Allowed", b"Method Not Allowed: use POST", "text/plain")
        if path != self.config.path:
            return not_the_websocket_path(self.config.path, self.tls is not None)
        return await self.refusal(http_request)

    def refusal(self, http_request: HttpRequest) -> Awaitable[Response | None]:
        """The answer to an upgrade request to the WebSocket path that is refused, else None."""
        full = not self._accepting or self.timers.live_count >= self.config.max_connections
        return upgrade_refusal(http_request, self.config.origins, full, self.app)

    # -- bookkeeping -----------------------------------------------------------------------

    def _opened(self, session: Session) -> None:
        if session.ended:  # the connection ended while the handshake middleware ran
            return
        self.timers.opened(session.link)
        log_opened(session)
        for hook in self.app.connection_hooks:  # the handle is made here only when a hook wants it
            self.spawn(hook, session.handle)

    def start_session(self, link: Link, http_request: HttpRequest) -> Session:
        """The session of a connection whose upgrade was accepted; it waits for its handshake."""
        assert self._sessions is not None, "the server is not running"
        session = Session(link, http_request, self._sessions)
        trace_frames(session, link)
        self.timers.connecting(link)
        return session

    def forget(self, conn: Link, session: Session) -> None:
        """A connection ended: release it and its session, log it, run the disconnection hooks."""
        was_open = self.timers.forget(conn)
        handle = session.handle if was_open and self.app.disconnection_hooks else None  # made if wanted
        conn.release()
        session.release()
        self.users.forget(session)
        if was_open:
            code = conn.close_code if conn.close_code is not None else CloseCode.ABNORMAL
            log_closed(session, conn, code, self.loop.current_time())
            for hook in self.app.disconnection_hooks if handle is not None else ():
                self.spawn(hook, handle, code, conn.close_reason)

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in the worker's nursery; an exception is logged, never fatal."""
        assert self._nursery is not None
        self._nursery.start_soon(_guarded, fn, *args)


def _connection_parts(
    config: ServerConfig,
    timers: Timers,
    stats: ServerStats,
    flow: FlowControl,
    spawn: Callable[..., None],
    loop: Loop,
) -> ConnectionParts:
    return ConnectionParts(
        max_payload=config.max_payload,
        outbound_limit=config.outbound_limit,
        ping_timeout=config.ping_timeout,
        close_timeout=config.close_timeout,
        write_batch=WriteBatch(loop),
        timers=timers,
        stats=stats,
        spawn=spawn,
        recv_view=memoryview(bytearray(RECV_SIZE)),
        flow=flow,
        message_rate=config.message_rate,
        message_burst=config.message_burst,
        loop=loop,
    )


async def _guarded(fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
    try:
        await fn(*args)
    except Exception as error:
        log_app_failure(error, f"application hook {getattr(fn, '__name__', fn)!r}")
