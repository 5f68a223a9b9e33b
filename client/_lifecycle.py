"""The client's connection life: connect, serve one session at a time, reconnect, close for good.

Its main task opens a :class:`Session`, serves it (reader in the main task, a writer task and a
ping watchdog beside it) and, when it closes, decides from the close code whether and when to
reconnect (:class:`ReconnectOptions`). The rest of the client hears about each step through
:class:`SessionHooks` and reaches the current session through this object (a ``SessionLink``).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from hubbub.protocol import Heartbeat, Packet, SCError

from ._buffer import Notifier
from ._errors import ConnectError, ConnectionClosedError
from ._events import Connected, ConnectFailed, Disconnected, EventHub, Reconnecting
from ._options import ClientOptions
from ._session import Session, open_session
from ._websocket import TransportClosed

__all__ = ["ClientState", "Lifecycle", "SessionHooks"]

log = logging.getLogger("hubbub.client")


class ClientState(enum.Enum):
    """Where the client's connection stands."""

    CONNECTING = "connecting"  # connecting, or waiting to reconnect
    OPEN = "open"  # handshake done
    CLOSED = "closed"  # for good: closed by the user, or a close code that does not reconnect


@dataclass(frozen=True, slots=True)
class SessionHooks:
    """What the rest of the client does at each step of a connection's life."""

    #: The token to send with the next handshake.
    token: Callable[[], str | None]
    #: The call id of the next handshake.
    next_call_id: Callable[[], int]
    #: A handshake succeeded (the session is current).
    opened: Callable[[Session], None]
    #: A packet other than a ping arrived.
    received: Callable[[Session, Packet], None]
    #: The open session closed with a code and reason.
    closed: Callable[[int, str], None]
    #: The client closed for good; everything waiting ends with the error.
    finished: Callable[[ConnectionClosedError], None]


class Lifecycle:
    """Runs the connection loop in the client's task group; the client's ``SessionLink``."""

    def __init__(
        self, url: str, options: ClientOptions, hooks: SessionHooks, events: EventHub, notifier: Notifier
    ) -> None:
        self._url = url
        self._options = options
        self._hooks = hooks
        self._events = events
        self._notifier = notifier
        self.state = ClientState.CONNECTING
        self.session: Session | None = None
        #: The server's id for the current connection.
        self.id: str | None = None
        #: The server's ``authError`` from the last handshake (a refused token), or None.
        self.auth_error: SCError | None = None
        #: The last connection failure (:class:`ConnectError`), or None.
        self.last_error: Exception | None = None
        #: Successful handshakes.
        self.connections = 0
        self._tg: anyio.abc.TaskGroup | None = None
        self._closing = False
        self._run_scope = anyio.CancelScope()
        self._close_code: int | None = None
        self._close_reason = ""

    async def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Run the connection loop in ``tg``; with ``wait_connected``, connect first (raising on failure)."""
        self._tg = tg
        first = await self._open() if self._options.wait_connected else None
        if first is not None:
            self._on_open(first)
        tg.start_soon(self._run, first)

    def spawn(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Start a task in the client's task group (dropped before :meth:`start`)."""
        if self._tg is not None:
            self._tg.start_soon(func, *args)

    async def wait_session(self) -> Session:
        """The open session, once there is one; raises ``ConnectionClosedError`` when closed for good."""
        await self._notifier.wait_for(lambda: self.session is not None or self.state is ClientState.CLOSED)
        if self.session is None:
            raise self.closed_error()
        return self.session

    def closed_error(self) -> ConnectionClosedError:
        """The error for calls made on a closed client (with the last close code)."""
        code, reason = self._close_code, self._close_reason
        detail = f" (code {code}{': ' + reason if reason else ''})"
        return ConnectionClosedError(
            "the client is closed" + (detail if code else ""), code=code, reason=reason
        )

    async def aclose(self) -> None:
        """Close the connection (code 1000) and stop reconnecting. Idempotent."""
        self._closing = True
        session = self.session
        if session is not None:
            await session.ws.close(1000, "", timeout=self._options.close_timeout)
        self._run_scope.cancel()
        if self._tg is not None:
            with anyio.move_on_after(self._options.close_timeout):
                await self._notifier.wait_for(lambda: self.state is ClientState.CLOSED)
        await anyio.lowlevel.checkpoint()

    async def _open(self) -> Session:
        options = self._options
        return await open_session(
            self._url,
            codec=options.codec,
            protocol_version=options.protocol_version,
            token=self._hooks.token(),
            cid=self._hooks.next_call_id(),
            connect_timeout=options.connect_timeout,
            ack_timeout=options.ack_timeout,
            close_timeout=options.close_timeout,
            max_size=options.max_message_size,
            ssl_context=options.ssl_context,
        )

    async def _run(self, session: Session | None) -> None:
        policy = self._options.reconnect_policy
        attempt, code, reason = 0, 1006, ""
        try:
            with self._run_scope:
                while True:
                    if session is None and not self._closing:
                        session, code = await self._try_open()
                    if session is not None:  # served even when closing: it reads the close echo
                        attempt = 0
                        code, reason = await self._serve(session)
                        session = None
                    delay = policy.delay(attempt, code) if self._options.auto_reconnect else None
                    if delay is None or self._closing:
                        break
                    self._events.emit(Reconnecting(attempt, delay))
                    attempt += 1
                    await anyio.sleep(delay)
        finally:
            if self._closing:
                code, reason = 1000, ""
            self._finish(code, reason)

    async def _try_open(self) -> tuple[Session | None, int]:
        try:
            session = await self._open()
        except ConnectError as exc:
            log.info("connecting to %s failed: %s", self._url, exc)
            self.last_error = exc
            self._events.emit(ConnectFailed(exc))
            return None, exc.code
        self._on_open(session)
        return session, 0

    async def _serve(self, session: Session) -> tuple[int, str]:
        closed = (1006, "")
        try:
            closed = await self._read_loop(session)
        finally:
            with anyio.CancelScope(shield=True):
                await session.ws.abort()
            self._on_close(*closed)
        return closed

    async def _read_loop(self, session: Session) -> tuple[int, str]:
        closed = (1006, "")
        received = self._hooks.received
        async with anyio.create_task_group() as tg:
            tg.start_soon(session.write_loop)
            tg.start_soon(self._watchdog, session)
            try:
                for packet in session.leftovers:
                    received(session, packet)
                while True:
                    for item in session.conn.receive(await session.ws.receive()):
                        if isinstance(item, Heartbeat):
                            session.on_ping()
                        else:
                            received(session, item)
            except TransportClosed as exc:
                closed = (exc.code, exc.reason)
            tg.cancel_scope.cancel()
        return closed

    async def _watchdog(self, session: Session) -> None:
        """Close with 4000 when no ping arrives for the server's ``pingTimeout`` (pings move the deadline)."""
        with anyio.move_on_after(session.reply.ping_timeout) as session.ping_scope:
            await anyio.sleep_forever()
        log.info("no ping from %s within %g s; reconnecting", self._url, session.reply.ping_timeout)
        await session.ws.close(4000, "Server ping timed out", timeout=self._options.close_timeout)

    def _on_open(self, session: Session) -> None:
        reply = session.reply
        self.id = reply.id
        self.auth_error = reply.auth_error
        self.last_error = None
        self.session = session
        self.state = ClientState.OPEN
        self.connections += 1
        self._hooks.opened(session)
        self._events.emit(Connected(reply.id, reply.ping_timeout, reply.is_authenticated, reply.auth_error))
        self._notifier.notify()

    def _on_close(self, code: int, reason: str) -> None:
        self.session = None
        self.id = None
        if self.state is ClientState.OPEN:
            self.state = ClientState.CONNECTING
        self._close_code, self._close_reason = code, reason
        self._hooks.closed(code, reason)
        self._events.emit(Disconnected(code, reason))
        self._notifier.notify()

    def _finish(self, code: int, reason: str) -> None:
        self.state = ClientState.CLOSED
        self._close_code, self._close_reason = code, reason
        self._hooks.finished(self.closed_error())
        self._events.close()
        self._notifier.notify()
