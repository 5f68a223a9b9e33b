"""The client: connection loop with reconnects, calls, channels, auth, handlers.

Inside :func:`connect` the client owns one task group. Its main task opens a :class:`Session`,
serves it (reader in the main task, a writer task and a ping watchdog beside it) and, when it
closes, decides from the close code whether and when to reconnect (:class:`ReconnectOptions`).
Everything users call is either synchronous bookkeeping or waits on events; only the session
tasks touch the socket.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from hubbub.protocol import (
    CallIds,
    Heartbeat,
    Invoke,
    Packet,
    Response,
    SCError,
    Transmit,
    client_invoke_packet,
    hydrate_error,
    response_packet,
    transmit_packet,
)

from ._auth import AuthState, MemoryTokenStore, TokenStore, token_payload
from ._backoff import ReconnectOptions
from ._buffer import Notifier, Overflow
from ._channel import Channel, ChannelState, SubscribeOptions, Subscription
from ._errors import (
    AckTimeoutError,
    ChannelOverflowError,
    ConnectError,
    ConnectionClosedError,
    KickedOutError,
    NotConnectedError,
    RemoteError,
)
from ._events import (
    AuthStateChanged,
    ClientEvent,
    Connected,
    ConnectFailed,
    Disconnected,
    EventHub,
    KickedOut,
    Reconnecting,
    TokenChanged,
)
from ._handlers import Handler, Handlers
from ._session import Session, open_session
from ._websocket import TransportClosed, normalize_url

__all__ = ["Client", "ClientState", "ClientStatistics"]

log = logging.getLogger("hubbub.client")

_OUTBOX_LIMIT = 1024


class ClientState(enum.Enum):
    """Where the client's connection stands."""

    CONNECTING = "connecting"  # connecting, or waiting to reconnect
    OPEN = "open"  # handshake done
    CLOSED = "closed"  # for good: closed by the user, or a close code that does not reconnect


@dataclasses.dataclass(slots=True)
class ClientStatistics:
    """What :meth:`Client.statistics` reports."""

    #: Successful handshakes (the first connection included).
    connections: int = 0
    #: Requests sent and not answered yet.
    pending_calls: int = 0
    #: ``#publish`` messages delivered to a subscribed (or pending) channel.
    publications: int = 0
    #: ``#publish`` messages for channels this client is not subscribed to (dropped).
    ignored_publications: int = 0


class _Call:
    __slots__ = ("done", "error", "response")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.response: Response | None = None
        self.error: BaseException | None = None


class Client:
    """A SocketCluster client; create it with :func:`connect` (see there for the options)."""

    def __init__(
        self,
        url: str,
        *,
        codec: str = "json",
        ack_timeout: float = 10.0,
        connect_timeout: float = 20.0,
        auth_token: str | None = None,
        token_store: TokenStore | None = None,
        auto_reconnect: bool = True,
        reconnect: ReconnectOptions | None = None,
        protocol_version: int = 2,
        channel_buffer: int = 1000,
        overflow: Overflow = Overflow.DROP_OLDEST,
        close_timeout: float = 2.0,
        max_message_size: int | None = 2**24,
        ssl_context: ssl.SSLContext | None = None,
        procedures: Mapping[str, Handler] | None = None,
        receivers: Mapping[str, Handler] | None = None,
    ) -> None:
        self.url = normalize_url(url)
        self.codec = codec
        self.ack_timeout = ack_timeout
        self.connect_timeout = connect_timeout
        self.auto_reconnect = auto_reconnect
        self.reconnect_options = reconnect or ReconnectOptions()
        self.protocol_version = protocol_version
        self.channel_buffer = channel_buffer
        self.overflow = overflow
        self.close_timeout = close_timeout
        self.max_message_size = max_message_size
        self.ssl_context = ssl_context
        self.token_store: TokenStore = token_store if token_store is not None else MemoryTokenStore()
        if auth_token is not None:
            self.token_store.save(auth_token)
        self._handlers = Handlers(procedures, receivers)
        self._state = ClientState.CONNECTING
        self._session: Session | None = None
        self._cids = CallIds()
        self._calls: dict[int, _Call] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._notifier = Notifier()
        self._stats = ClientStatistics()
        self._events = EventHub()
        self._auth_state = AuthState.UNAUTHENTICATED
        self._auth_token: str | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._closing = False
        self._run_scope = anyio.CancelScope()
        self._close_code: int | None = None
        self._close_reason = ""
        self.id: str | None = None
        #: The server's ``authError`` from the last handshake (a refused token), or None.
        self.auth_error: SCError | None = None
        #: The last connection failure (:class:`ConnectError`), or None.
        self.last_error: Exception | None = None

    # ---- state -------------------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """``CONNECTING`` (also while waiting to reconnect), ``OPEN`` or ``CLOSED`` (for good)."""
        return self._state

    @property
    def auth_state(self) -> AuthState:
        """``AUTHENTICATED`` or ``UNAUTHENTICATED``."""
        return self._auth_state

    @property
    def auth_token(self) -> str | None:
        """The signed token the connection is authenticated with."""
        return self._auth_token

    @property
    def auth_claims(self) -> Any:
        """The token's payload, decoded without verifying the signature (None when unauthenticated)."""
        return token_payload(self._auth_token)

    def statistics(self) -> ClientStatistics:
        """Counters for monitoring and tests (a copy)."""
        return dataclasses.replace(self._stats, pending_calls=len(self._calls))

    def channel_names(self) -> list[str]:
        """The channels subscribed or pending, in subscription order."""
        return list(self._subscriptions)

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait for an open connection; raises ``ConnectionClosedError`` if the client closes for good."""
        with anyio.fail_after(timeout):
            await self._open_session()

    async def wait_authenticated(self, timeout: float | None = None) -> None:
        """Wait until the client is authenticated."""
        with anyio.fail_after(timeout):
            await self._notifier.wait_for(
                lambda: self._auth_state is AuthState.AUTHENTICATED or self._state is ClientState.CLOSED
            )
        if self._auth_state is not AuthState.AUTHENTICATED:
            raise self._closed_error()

    def events(self, max_size: int = 256) -> AbstractAsyncContextManager[AsyncIterator[ClientEvent]]:
        """``async with client.events() as events: async for event in events:`` — connection and auth events.

        Yields :class:`Connected`, :class:`Disconnected`, :class:`ConnectFailed`,
        :class:`Reconnecting`, :class:`AuthStateChanged`, :class:`TokenChanged`, :class:`KickedOut`
        emitted while the block is open (oldest dropped beyond ``max_size``).
        """
        return self._events.listen(max_size)

    # ---- calls -------------------------------------------------------------------------------

    async def invoke(self, procedure: str, data: Any = None, *, timeout: float | None = None) -> Any:
        """Call a server procedure and return its result.

        Raises :class:`RemoteError` (the server's error name, message and fields),
        :class:`AckTimeoutError` after ``timeout`` (default: the client's ``ack_timeout``) seconds,
        :class:`ConnectionClosedError` if the connection drops first. While the client is
        reconnecting the call waits for the connection (within the same timeout).
        """
        return await self._request(procedure, data, self.ack_timeout if timeout is None else timeout)

    async def transmit(self, event: str, data: Any = None) -> None:
        """Send an event with no reply expected (waits up to ``ack_timeout`` for a connection)."""
        session = await self._writable_session()
        session.send(transmit_packet(event, data))

    async def publish(
        self, channel: str, data: Any = None, *, ack: bool = True, timeout: float | None = None
    ) -> None:
        """Publish ``data`` to ``channel``; with ``ack`` (default) wait for the server to accept it.

        An acknowledged publish raises :class:`RemoteError` when the server refuses it; a
        fire-and-forget one (``ack=False``) returns once the message is queued for sending.
        """
        payload = {"channel": channel, "data": data}
        if ack:
            await self._request("#publish", payload, self.ack_timeout if timeout is None else timeout)
        else:
            await self.transmit("#publish", payload)

    async def _request(self, event: str, data: Any, timeout: float | None) -> Any:
        try:
            with anyio.fail_after(timeout):
                session = await self._open_session()
                await session.wait_backlog_below(_OUTBOX_LIMIT)
                cid, call = self._send_call(session, event, data)
                return await self._call_result(cid, call)
        except TimeoutError:
            raise AckTimeoutError(f"Event response for {event} event timed out") from None

    def _send_call(self, session: Session, event: str, data: Any) -> tuple[int, _Call]:
        """Queue a request now (so requests leave in call order); await it with :meth:`_call_result`."""
        cid = self._cids.next()
        call = self._calls[cid] = _Call()
        session.send(client_invoke_packet(event, data, cid))
        return cid, call

    async def _call_result(self, cid: int, call: _Call) -> Any:
        try:
            await call.done.wait()
        finally:
            self._calls.pop(cid, None)
        if call.error is not None:
            raise call.error
        assert call.response is not None
        error = hydrate_error(call.response.error)
        if error is not None:
            raise RemoteError.from_sc(error)
        return call.response.data

    async def _open_session(self) -> Session:
        await self._notifier.wait_for(lambda: self._session is not None or self._state is ClientState.CLOSED)
        if self._session is None:
            raise self._closed_error()
        return self._session

    async def _writable_session(self) -> Session:
        with anyio.move_on_after(self.ack_timeout):
            session = await self._open_session()
            await session.wait_backlog_below(_OUTBOX_LIMIT)
            return session
        raise NotConnectedError(f"no connection to {self.url} within {self.ack_timeout:g} s")

    def _closed_error(self) -> ConnectionClosedError:
        detail = f" (code {self._close_code}{': ' + self._close_reason if self._close_reason else ''})"
        return ConnectionClosedError(
            "the client is closed" + (detail if self._close_code else ""),
            code=self._close_code,
            reason=self._close_reason,
        )

    # ---- channels ----------------------------------------------------------------------------

    def subscribe(
        self,
        channel: str,
        *,
        data: Any = None,
        wait_for_auth: bool = False,
        priority: int = 0,
        max_size: int | None = None,
        overflow: Overflow | None = None,
    ) -> Channel:
        """Subscribe to ``channel`` and return a handle to iterate (and ``async with``).

        The request goes out now if connected (or after the next handshake; with ``wait_for_auth``
        only once authenticated). Calling it again for the same channel gives another handle on the
        same subscription (``data``/``wait_for_auth``/``priority`` of the first call apply). Each
        handle buffers up to ``max_size`` messages (default: the client's ``channel_buffer``),
        applying ``overflow`` (default: the client's ``overflow``) beyond that.
        """
        if self._state is ClientState.CLOSED:
            raise self._closed_error()
        subscription = self._subscriptions.get(channel)
        if subscription is None:
            options = SubscribeOptions(data, wait_for_auth, priority)
            subscription = Subscription(channel, options, self._notifier)
            self._subscriptions[channel] = subscription
            self._send_subscribe(subscription)
        handle = Channel(self, subscription, max_size or self.channel_buffer, overflow or self.overflow)
        subscription.handles.add(handle)
        return handle

    async def unsubscribe(self, channel: str) -> None:
        """Unsubscribe every handle of ``channel``."""
        await anyio.lowlevel.checkpoint()
        subscription = self._subscriptions.get(channel)
        if subscription is not None:
            for handle in list(subscription.handles):
                self.release_channel(handle)

    def release_channel(self, channel: Channel, error: BaseException | None = None) -> None:
        """End one handle (``Channel.unsubscribe`` calls this); the last one unsubscribes on the wire."""
        channel._end(error)
        subscription = channel._subscription
        subscription.handles.discard(channel)
        if subscription.handles or self._subscriptions.get(subscription.name) is not subscription:
            return
        del self._subscriptions[subscription.name]
        active = subscription.state is ChannelState.SUBSCRIBED or subscription.in_flight
        subscription.set_state(ChannelState.UNSUBSCRIBED)
        if active and self._session is not None:
            self._session.send(transmit_packet("#unsubscribe", subscription.name))

    def _send_subscribe(self, subscription: Subscription) -> None:
        """Send ``#subscribe`` now if connected, allowed (auth) and not already in flight."""
        session = self._session
        waiting_for_auth = (
            subscription.options.wait_for_auth and self._auth_state is not AuthState.AUTHENTICATED
        )
        if session is None or waiting_for_auth or subscription.in_flight:
            return
        if subscription.state is not ChannelState.PENDING:
            return
        cid, call = self._send_call(session, "#subscribe", subscription.options.wire(subscription.name))
        subscription.call_id = cid
        self._spawn(self._subscribe_result, subscription, cid, call)

    async def _subscribe_result(self, subscription: Subscription, cid: int, call: _Call) -> None:
        try:
            await self._call_result(cid, call)
        except RemoteError as exc:
            if self._subscriptions.get(subscription.name) is subscription:
                del self._subscriptions[subscription.name]
                subscription.end(exc)
        except ConnectionClosedError:
            pass  # stays pending; the next handshake resubscribes it
        else:
            current = self._subscriptions.get(subscription.name) is subscription
            if current and subscription.call_id == cid:
                subscription.set_state(ChannelState.SUBSCRIBED)
        finally:
            if subscription.call_id == cid:
                subscription.call_id = None

    def _process_pending_subscriptions(self) -> None:
        pending = [s for s in self._subscriptions.values() if s.state is ChannelState.PENDING]
        for subscription in sorted(pending, key=lambda s: -s.options.priority):
            self._send_subscribe(subscription)

    # ---- auth --------------------------------------------------------------------------------

    async def authenticate(self, token: str) -> None:
        """Present a signed token (``#authenticate``); on success it is stored and the client is authenticated.

        Raises :class:`RemoteError` when the server refuses the token (the client is then
        unauthenticated).
        """
        try:
            status = await self._request("#authenticate", token, self.ack_timeout)
        except RemoteError:
            self._become_unauthenticated()
            raise
        auth_error = status.get("authError") if isinstance(status, dict) else None
        if isinstance(status, dict) and status.get("isAuthenticated"):
            self._store_token(token)
            self._become_authenticated(token)
            return
        self._become_unauthenticated()
        raise RemoteError.from_sc(
            hydrate_error(auth_error) or SCError("authentication failed", "AuthTokenError")
        )

    async def deauthenticate(self) -> None:
        """Forget the token and tell the server (``#removeAuthToken``) when connected."""
        await anyio.lowlevel.checkpoint()
        self._store_token(None)
        if self._session is not None:
            self._session.send(transmit_packet("#removeAuthToken"))
        self._become_unauthenticated()

    def _load_token(self) -> str | None:
        try:
            return self.token_store.load()
        except OSError:
            log.exception("the token store failed; connecting without a token")
            return None

    def _store_token(self, token: str | None) -> None:
        """Save (or with None clear) the token; a failing store is logged, not fatal (as in the JS client)."""
        try:
            if token is None:
                self.token_store.clear()
            else:
                self.token_store.save(token)
        except OSError:
            log.exception("the token store failed")

    def _become_authenticated(self, token: str) -> None:
        old = self._auth_state
        self._auth_token = token
        self._auth_state = AuthState.AUTHENTICATED
        payload = token_payload(token)
        if old is not AuthState.AUTHENTICATED:
            self._events.emit(AuthStateChanged(old, AuthState.AUTHENTICATED, token, payload))
            self._process_pending_subscriptions()
        self._events.emit(TokenChanged(token, payload))
        self._notifier.notify()

    def _become_unauthenticated(self) -> None:
        old = self._auth_state
        self._auth_token = None
        self._auth_state = AuthState.UNAUTHENTICATED
        if old is not AuthState.UNAUTHENTICATED:
            self._events.emit(AuthStateChanged(old, AuthState.UNAUTHENTICATED, None, None))
            self._events.emit(TokenChanged(None, None))
            self._notifier.notify()

    # ---- handlers ----------------------------------------------------------------------------

    def set_procedure(self, name: str, handler: Handler | None) -> None:
        """Answer server-initiated invokes of ``name`` with ``handler(data)`` (None removes it).

        The handler may be a plain or a coroutine function; it runs in its own task. Its return
        value is the response data; an exception becomes the error response (an ``SCError`` keeps
        its name and fields). Invokes with no handler get a ``NoProcedureError`` response.
        """
        self._handlers.set_procedure(name, handler)

    def set_receiver(self, name: str, handler: Handler | None) -> None:
        """Call ``handler(data)`` for each server transmit of ``name`` (None removes it).

        Plain functions run in order, inline (keep them short); coroutine functions each get a
        task. For ordered asynchronous handling use :meth:`listen` instead.
        """
        self._handlers.set_receiver(name, handler)

    def listen(self, event: str, max_size: int = 1000) -> AbstractAsyncContextManager[AsyncIterator[Any]]:
        """``async with client.listen("greetBack") as stream: async for data in stream:``.

        Each server transmit of ``event`` while the block is open (the oldest dropped beyond ``max_size``).
        """
        return self._handlers.listen(event, max_size)

    # ---- inbound packets -----------------------------------------------------------------------

    def _dispatch(self, session: Session, item: Heartbeat | Packet) -> None:
        if isinstance(item, Heartbeat):
            session.on_ping()
        elif isinstance(item, Response):
            call = self._calls.get(int(item.rid)) if float(item.rid).is_integer() else None
            if call is not None:
                call.response = item
                call.done.set()
        elif isinstance(item, Invoke):
            self._on_invoke(session, item)
        elif isinstance(item, Transmit):
            self._on_transmit(item.event, item.data)

    def _on_transmit(self, event: str, data: Any) -> None:
        if event == "#publish":
            if isinstance(data, dict) and isinstance(data.get("channel"), str):
                self._deliver(data["channel"], data.get("data"))
        elif event == "#kickOut":
            if isinstance(data, dict) and isinstance(data.get("channel"), str):
                self._kick_out(data["channel"], data.get("message"))
        elif event == "#setAuthToken":
            if isinstance(data, dict) and isinstance(data.get("token"), str):
                self._store_token(data["token"])
                self._become_authenticated(data["token"])
        elif event == "#removeAuthToken":
            self._store_token(None)
            if self._auth_state is AuthState.UNAUTHENTICATED:
                self._events.emit(TokenChanged(None, None))  # a refused handshake token
            self._become_unauthenticated()
        else:
            self._handlers.on_transmit(event, data, self._spawn)

    def _on_invoke(self, session: Session, request: Invoke) -> None:
        if request.event in ("#setAuthToken", "#removeAuthToken"):
            data = request.data
            if request.event == "#removeAuthToken" or (
                isinstance(data, dict) and isinstance(data.get("token"), str)
            ):
                self._on_transmit(request.event, data)
                session.send(response_packet(request.cid))
            else:
                error = {
                    "message": "No token data provided by #setAuthToken event",
                    "name": "InvalidMessageError",
                }
                session.send(response_packet(request.cid, error=error))
            return
        self._handlers.on_invoke(session, request, self._spawn)

    def _spawn(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        if self._tg is not None:
            self._tg.start_soon(func, *args)

    def _deliver(self, channel: str, data: Any) -> None:
        subscription = self._subscriptions.get(channel)
        if subscription is None or subscription.state is ChannelState.UNSUBSCRIBED:
            self._stats.ignored_publications += 1
            return
        self._stats.publications += 1
        for handle in subscription.deliver(data):
            self.release_channel(handle, ChannelOverflowError(f"channel {channel!r}: buffer overflowed"))

    def _kick_out(self, channel: str, message: Any) -> None:
        subscription = self._subscriptions.pop(channel, None)
        if subscription is not None:
            subscription.end(KickedOutError(channel, message))
        self._events.emit(KickedOut(channel, message))

    # ---- connection loop -----------------------------------------------------------------------

    async def _open(self) -> Session:
        return await open_session(
            self.url,
            codec=self.codec,
            protocol_version=self.protocol_version,
            token=self._load_token(),
            cid=self._cids.next(),
            connect_timeout=self.connect_timeout,
            ack_timeout=self.ack_timeout,
            close_timeout=self.close_timeout,
            max_size=self.max_message_size,
            ssl_context=self.ssl_context,
        )

    async def _start(self, tg: anyio.abc.TaskGroup, wait: bool) -> None:
        self._tg = tg
        first = await self._open() if wait else None
        if first is not None:
            self._on_open(first)
        tg.start_soon(self._run, first)

    async def _run(self, session: Session | None) -> None:
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
                    delay = self.reconnect_options.delay(attempt, code) if self.auto_reconnect else None
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
            log.info("connecting to %s failed: %s", self.url, exc)
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
        async with anyio.create_task_group() as tg:
            tg.start_soon(session.write_loop)
            tg.start_soon(self._watchdog, session)
            try:
                for packet in session.leftovers:
                    self._dispatch(session, packet)
                while True:
                    for item in session.conn.receive(await session.ws.receive()):
                        self._dispatch(session, item)
            except TransportClosed as exc:
                closed = (exc.code, exc.reason)
            tg.cancel_scope.cancel()
        return closed

    async def _watchdog(self, session: Session) -> None:
        """Close with 4000 when no ping arrives for the server's ``pingTimeout`` (pings move the deadline)."""
        with anyio.move_on_after(session.reply.ping_timeout) as session.ping_scope:
            await anyio.sleep_forever()
        log.info("no ping from %s within %g s; reconnecting", self.url, session.reply.ping_timeout)
        await session.ws.close(4000, "Server ping timed out", timeout=self.close_timeout)

    def _on_open(self, session: Session) -> None:
        reply = session.reply
        self.id = reply.id
        self.auth_error = reply.auth_error
        self.last_error = None
        self._session = session
        self._state = ClientState.OPEN
        self._stats.connections += 1
        if reply.is_authenticated and reply.token is not None:
            self._become_authenticated(reply.token)
        else:
            self._become_unauthenticated()
        self._events.emit(Connected(reply.id, reply.ping_timeout, reply.is_authenticated, reply.auth_error))
        self._process_pending_subscriptions()
        self._notifier.notify()

    def _on_close(self, code: int, reason: str) -> None:
        self._session = None
        self.id = None
        if self._state is ClientState.OPEN:
            self._state = ClientState.CONNECTING
        self._close_code, self._close_reason = code, reason
        for call in self._calls.values():
            message = f"connection closed (code {code}) before the response arrived"
            call.error = ConnectionClosedError(message, code=code, reason=reason)
            call.done.set()
        self._calls.clear()
        for subscription in self._subscriptions.values():
            subscription.call_id = None
            if subscription.state is ChannelState.SUBSCRIBED:
                subscription.set_state(ChannelState.PENDING)
        self._events.emit(Disconnected(code, reason))
        self._notifier.notify()

    def _finish(self, code: int, reason: str) -> None:
        self._state = ClientState.CLOSED
        self._close_code, self._close_reason = code, reason
        error = self._closed_error()
        for subscription in list(self._subscriptions.values()):
            subscription.end(error)
        self._subscriptions.clear()
        self._handlers.close(error)
        self._events.close()
        self._notifier.notify()

    async def aclose(self) -> None:
        """Close the connection (code 1000) and stop reconnecting. Idempotent."""
        self._closing = True
        session = self._session
        if session is not None:
            await session.ws.close(1000, "", timeout=self.close_timeout)
        self._run_scope.cancel()
        if self._tg is not None:
            with anyio.move_on_after(self.close_timeout):
                await self._notifier.wait_for(lambda: self._state is ClientState.CLOSED)
        await anyio.lowlevel.checkpoint()
