"""One client connection after the WebSocket upgrade: SocketCluster semantics on top of frames.

:class:`ServerSocket` is what application code holds: ``transmit``, ``invoke``, ``set_auth_token``,
``deauthenticate``, ``kick_out``, ``disconnect`` and batching. Inbound packets are processed
strictly in order, each waiting for its middleware, as socketcluster-server does; procedures and
receivers run in tasks of their own so a slow one never holds up the socket.
"""

from __future__ import annotations

import base64
import logging
import os
import socket as stdsocket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from itertools import count
from typing import TYPE_CHECKING, Any

import trio
from websockets.exceptions import InvalidState
from websockets.server import ServerProtocol

from hubbub.broker import BrokerUnavailable
from hubbub.protocol import (
    PUBLISH_PREFIX,
    UNDEFINED,
    AuthTokenExpiredError,
    BrokerError,
    CallIds,
    ClientPublish,
    CloseCode,
    Connection,
    Heartbeat,
    InvalidActionError,
    Invoke,
    Liveness,
    Packet,
    Raw,
    Role,
    SCError,
    State,
    Transmit,
    dehydrate_error,
    hydrate_error,
    response_packet,
    server_invoke_packet,
    transmit_packet,
)
from hubbub.protocol import Response as ResponsePacket

from ._transport.framing import frame_message, frame_text
from ._transport.outbound import Outbound
from ._transport.state import SocketState
from .app import Request
from .broker_errors import subscribe_failed
from .middleware import Action, ActionType, MiddlewareLine, run_middleware

if TYPE_CHECKING:
    from ._transport.http import HttpRequest
    from .server import Server

__all__ = ["ServerSocket"]

log = logging.getLogger("hubbub.socket")
_CONNECTING, _OPEN, _CLOSING, _CLOSED = SocketState
_ids = count()
_PUBLISH_PREFIX = PUBLISH_PREFIX.encode()


_random_pool = memoryview(b"")


def make_socket_id() -> str:
    """20 URL-safe characters: 12 random bytes and a 3-byte per-process sequence (as base64id).

    The random bytes come from a pool drawn from ``os.urandom`` 4 KiB at a time, as base64id does.
    """
    global _random_pool
    if len(_random_pool) < 12:
        _random_pool = memoryview(os.urandom(4092))
    raw = _random_pool[:12].tobytes() + (next(_ids) & 0xFFFFFF).to_bytes(3, "big")
    _random_pool = _random_pool[12:]
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _is_bad_token(error: BaseException) -> bool:
    return bool(isinstance(error, SCError) and error.fields.get("isBadToken"))


class _Call:
    """A server-to-client invoke waiting for its response."""

    __slots__ = ("data", "done", "error")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.data: Any = None
        self.error: SCError | None = None


class ServerSocket:
    """A connected SocketCluster client, as the server sees it."""

    __slots__ = (
        "_batch",
        "_calls",
        "_cids",
        "_conn",
        "_filtered",
        "_lanes",
        "_out",
        "_pending_calls",
        "_raw",
        "_server",
        "_tasks",
        "auth_token",
        "close_code",
        "close_deadline",
        "close_reason",
        "id",
        "liveness",
        "opened_at",
        "request",
        "signed_auth_token",
        "state",
        "ws",
    )

    def __init__(
        self, server: Server, request: HttpRequest, ws: ServerProtocol, raw: stdsocket.socket
    ) -> None:
        self._server = server
        self.ws = ws
        self._raw = raw
        self._tasks: set[trio.CancelScope] | None = None
        self._conn = Connection(Role.SERVER, server.codec, server.config.protocol_version)
        self._out = Outbound(raw, server.config.outbound_limit, self, server.write_batch)
        self._batch: list[Any] | None = None
        self._lanes: dict[str, deque[tuple[Callable[..., Awaitable[None]], Any]]] | None = None
        self._pending_calls = 0
        self._calls: dict[int, _Call] | None = None
        self._cids = CallIds()
        self.id = make_socket_id()
        self.request = request
        self.state = _CONNECTING
        #: The verified token payload while authenticated, else None.
        self.auth_token: dict[str, Any] | None = None
        self.signed_auth_token: str | None = None
        now = trio.current_time()
        self.opened_at = now
        self.liveness = Liveness(server.config.ping_timeout, now)
        #: When a ``CLOSING`` socket is dropped if the peer has not closed by then.
        self.close_deadline = 0.0
        self.close_code: int | None = None
        self.close_reason = ""
        #: Deliveries waiting for the outbound middleware (only when the app has one).
        self._filtered: deque[tuple[str, Any]] | None = None

    # -- properties ------------------------------------------------------------------------

    @property
    def is_authenticated(self) -> bool:
        return self.auth_token is not None

    @property
    def channels(self) -> frozenset[str]:
        """The channels this socket is subscribed to."""
        return self._server.hub.channels_of(self)

    @property
    def outbound_backlog(self) -> int:
        return self._out.backlog

    # -- sending ---------------------------------------------------------------------------

    def send_frame(self, frame: bytes) -> None:
        """Send an already framed message (the fan-out path: the same bytes for every subscriber)."""
        if self.state is _OPEN or self.state is _CONNECTING:
            self._out.write(frame)

    def send_packet(self, packet: Any) -> None:
        self._server.stats.messages_out += 1
        if self._batch is not None:
            self._batch.append(packet)
            return
        if self.state is _OPEN or self.state is _CONNECTING:
            self._out.write(frame_message(self._conn.encode(packet)))

    def transmit(self, event: str, data: Any = None) -> None:
        """Send an event to the client; no reply is expected."""
        self.send_packet(transmit_packet(event, data))

    async def invoke(self, event: str, data: Any = None, *, timeout: float | None = None) -> Any:
        """Call ``event`` on the client and return its answer.

        Raises :class:`TimeoutError` after ``timeout`` (default: the server's ``ack_timeout``),
        the client's error as :class:`SCError`, or ``SCError(name="BadConnectionError")`` if the
        socket closes first.
        """
        if self.state is _CLOSED:
            raise SCError("Socket is closed", name="BadConnectionError")
        cid = self._cids.next()
        if self._calls is None:
            self._calls = {}
        call = self._calls[cid] = _Call()
        self.send_packet(server_invoke_packet(event, data, cid))
        try:
            with trio.move_on_after(timeout or self._server.config.ack_timeout):
                await call.done.wait()
        finally:
            if self._calls is not None:
                self._calls.pop(cid, None)
        if not call.done.is_set():
            raise TimeoutError(f"Event response for {event} event timed out")
        if call.error is not None:
            raise call.error
        return call.data

    def respond(self, cid: int | float, data: Any = UNDEFINED) -> None:
        self.send_packet(response_packet(cid, data))

    def acknowledge(self, cid: int) -> None:
        """:meth:`respond` with no data, for a JSON worker's hot path: ``{"rid":cid}`` built as text."""
        if self._batch is not None or self._conn.codec.binary:
            self.respond(cid)
            return
        self._server.stats.messages_out += 1
        if self.state is _OPEN or self.state is _CONNECTING:
            self._out.write(frame_text(b'{"rid":%d}' % cid))

    def respond_error(self, cid: int | float, error: BaseException | dict[str, Any]) -> None:
        self.send_packet(response_packet(cid, error=dehydrate_error(error)))

    def start_batch(self) -> None:
        """Collect packets instead of sending them, until :meth:`flush_batch`."""
        if self._batch is None:
            self._batch = []

    def flush_batch(self) -> None:
        """Send the collected packets as one array frame."""
        batch, self._batch = self._batch, None
        if batch:
            self.send_packet(batch)

    # -- auth ------------------------------------------------------------------------------

    async def set_auth_token(
        self,
        claims: dict[str, Any],
        *,
        expires_in: float | None = None,
        reject_on_failed_delivery: bool = False,
    ) -> str:
        """Sign ``claims``, authenticate this socket and push ``#setAuthToken`` to the client.

        With ``reject_on_failed_delivery`` the push is an invoke and this waits for the client's
        acknowledgement. Returns the signed token.
        """
        token, payload = self._server.auth.sign_claims(claims, expires_in=expires_in)
        self.auth_token = payload
        self.signed_auth_token = token
        if reject_on_failed_delivery:
            await self.invoke("#setAuthToken", {"token": token})
        else:
            self.transmit("#setAuthToken", {"token": token})
        return token

    async def deauthenticate(self, *, reject_on_failed_delivery: bool = False) -> None:
        """Drop this socket's token and tell the client to remove its copy."""
        self.auth_token = None
        self.signed_auth_token = None
        if reject_on_failed_delivery:
            await self.invoke("#removeAuthToken")
        else:
            self.transmit("#removeAuthToken")

    def _expire_token(self) -> SCError | None:
        exp = self.auth_token.get("exp") if self.auth_token else None
        if not isinstance(exp, int | float) or time.time() <= exp:
            return None
        self.auth_token = None
        self.signed_auth_token = None
        self.transmit("#removeAuthToken")
        return AuthTokenExpiredError("Token expired", isBadToken=True)

    # -- channels --------------------------------------------------------------------------

    def kick_out(self, channel: str | None = None, message: str | None = None) -> None:
        """Unsubscribe from ``channel`` (all channels if None) and tell the client with ``#kickOut``."""
        hub = self._server.hub
        for name in hub.channels_of(self) if channel is None else [channel]:
            if hub.is_member(self, name):
                hub.unsubscribe(self, name)
                self.transmit("#kickOut", {"channel": name, "message": message})

    def deliver_filtered(self, channel: str, data: Any) -> None:
        """Queue a delivery that must pass the outbound middleware; one drain task keeps the order."""
        queue = self._filtered
        if queue is None:
            queue = self._filtered = deque()
            self.spawn(self._drain_filtered, queue)
        queue.append((channel, data))

    async def _drain_filtered(self, queue: deque[tuple[str, Any]]) -> None:
        server = self._server
        chain = server.app.middleware_chains[MiddlewareLine.OUTBOUND]
        try:
            while queue:
                channel, data = queue.popleft()
                action = Action(ActionType.PUBLISH_OUT, socket=self, channel=channel, data=data)
                if await run_middleware(chain, action) is None and server.hub.is_member(self, channel):
                    try:
                        self.transmit("#publish", {"channel": channel, "data": action.data})
                    except RecursionError:  # middleware made it deeper than the codec writes
                        log.info(
                            "dropped a publication on %r for socket %s: nested too deeply", channel, self.id
                        )
                        continue
                    server.hub.delivered()
        finally:
            self._filtered = None

    # -- closing ---------------------------------------------------------------------------

    def disconnect(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close the connection with ``code``; the client sees it in its close event."""
        if self.state is _CLOSING or self.state is _CLOSED:
            return
        self.close_code, self.close_reason = code, reason
        try:
            self.ws.send_close(code, reason)
        except InvalidState:
            pass
        self.flush_ws()
        self.close_deadline = trio.current_time() + self._server.config.close_timeout
        self.state = _CLOSING
        self._server.closing.add(self)

    def flush_ws(self) -> None:
        """Write what the WebSocket layer produced (close frames, pongs to control pings)."""
        for chunk in self.ws.data_to_send():
            if chunk:
                self._out.write_final(chunk)

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in a task that is cancelled when this socket closes."""
        self._server.spawn(self._run_task, fn, *args)

    async def _run_task(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        if self.state is _CLOSED:
            return
        with trio.CancelScope() as scope:
            if self._tasks is None:
                self._tasks = set()
            self._tasks.add(scope)
            try:
                await fn(*args)
            finally:
                self._tasks.discard(scope)

    def abort(self) -> None:
        """Drop the TCP connection now, without a close handshake."""
        if self.state is not _CLOSED:
            self.state = _CLOSED
            trio.lowlevel.notify_closing(self._raw)

    def overflowed(self) -> None:
        """The outbound backlog passed the limit: close as a slow consumer."""
        self._server.slow_consumer(self)

    # -- inbound ---------------------------------------------------------------------------

    async def handle_message(self, message: str | bytes) -> None:
        """Process one complete WebSocket message from the client."""
        server = self._server
        raw_chain = server.inbound_raw_chain
        read_publish = server.read_publish
        if read_publish is not None and message.__class__ is str and self._plain_publish_allowed():
            publish = read_publish(message)
            if publish is not None and len(publish.channel) <= server.config.max_channel_name:
                await self._publish_plain(publish)
                return
        if raw_chain:
            action = Action(ActionType.MESSAGE, socket=self, data=message)
            if await run_middleware(raw_chain, action) is not None:
                return
        for item in self._conn.receive(message):
            if isinstance(item, Heartbeat):
                self._expire_token()
                continue
            await self._process(item)
            if self.state is _CLOSING or self.state is _CLOSED:
                return

    async def _process(self, packet: Packet) -> None:
        if isinstance(packet, Invoke):
            await self._process_event(packet.event, packet.data, packet.cid)
        elif isinstance(packet, Transmit):
            await self._process_event(packet.event, packet.data, None)
        elif isinstance(packet, ResponsePacket):
            self._on_response(packet)
        elif isinstance(packet, Raw):
            self._server.stats.raw_messages += 1

    async def _process_event(self, event: str, data: Any, cid: int | float | None) -> None:
        handler = _EVENT_HANDLERS.get(event)
        if handler is not None:
            await handler(self, data, cid)
            return
        expired = self._expire_token()
        if cid is None:
            await self._on_transmit(event, data, expired)
        else:
            await self._on_invoke(event, data, cid, expired)

    def _on_response(self, packet: ResponsePacket) -> None:
        calls = self._calls
        call = calls.pop(packet.rid, None) if calls and isinstance(packet.rid, int) else None
        if call is None:
            return
        call.error = hydrate_error(packet.error)
        call.data = packet.data
        call.done.set()

    def _reply_error(self, cid: int | float | None, error: BaseException) -> None:
        if cid is not None:
            self.respond_error(cid, error)

    def _name_too_long(self) -> SCError:
        limit = self._server.config.max_channel_name
        return InvalidActionError(f"Channel name is longer than the limit of {limit} characters")

    async def _inbound(self, action: Action) -> BaseException | None:
        chain = self._server.inbound_chain
        return await run_middleware(chain, action) if chain else None

    async def _on_handshake(self, data: Any, cid: int | float | None) -> None:
        if cid is None:  # only reachable after the handshake: the strict rule covers the first one
            self.disconnect(CloseCode.HANDSHAKE_REJECTED)
            return
        signed = data.get("authToken") if isinstance(data, dict) else None
        token, auth_error = (None, None) if signed is None else await self._verify(signed)
        chain = self._server.app.middleware_chains[MiddlewareLine.HANDSHAKE]
        blocked = None
        if chain:
            action = Action(
                ActionType.HANDSHAKE_SC,
                socket=self,
                request=self.request,
                data={
                    "signedAuthToken": signed,
                    "authTokenError": auth_error,
                    "authToken": token,
                    "authState": "authenticated" if token is not None else "unauthenticated",
                },
            )
            blocked = await run_middleware(chain, action)
        if blocked is not None:
            self._reject_handshake(cid, blocked)
            return
        # As socketcluster-server: every handshake sets the auth state anew, so a later handshake
        # with no token, or a bad one, leaves the socket unauthenticated, as the reply says.
        self.auth_token, self.signed_auth_token = (token, signed) if token is not None else (None, None)
        first = self._conn.state is State.CONNECTING
        self._conn.handshake_complete()
        if self.state is _CONNECTING:  # not if it was closed while the middleware ran
            self.state = _OPEN
        reply: dict[str, Any] = {
            "id": self.id,
            "pingTimeout": round(self._server.config.ping_timeout * 1000),
        }
        if auth_error is not None:
            reply["authError"] = dehydrate_error(auth_error)
        reply["isAuthenticated"] = token is not None
        self.respond(cid, reply)
        if auth_error is not None and _is_bad_token(auth_error):
            self.transmit("#removeAuthToken")
        if first:
            self._server.socket_opened(self)

    def _reject_handshake(self, cid: int | float, blocked: BaseException) -> None:
        wire = dehydrate_error(blocked)
        code = getattr(blocked, "status_code", None)
        if isinstance(blocked, SCError):
            code = blocked.fields.get("statusCode", code)
        code = code if isinstance(code, int) else CloseCode.HANDSHAKE_REJECTED
        if isinstance(wire, dict):
            wire["statusCode"] = code
        self.respond_error(cid, wire)
        self.disconnect(code)

    async def _verify(self, signed: Any) -> tuple[dict[str, Any] | None, BaseException | None]:
        """Verify a presented token and run the ``authenticate`` middleware on it."""
        try:
            token = self._server.auth.verify(signed)
        except SCError as error:
            return None, error
        action = Action(ActionType.AUTHENTICATE, socket=self, signed_auth_token=signed, auth_token=token)
        blocked = await self._inbound(action)
        return (None, blocked) if blocked is not None else (token, None)

    async def _on_authenticate(self, data: Any, cid: int | float | None) -> None:
        if cid is None:
            self.disconnect(CloseCode.HANDSHAKE_REJECTED)
            return
        token, error = await self._verify(data)
        if error is None:
            self.auth_token, self.signed_auth_token = token, data
            self.respond(cid, {"isAuthenticated": True, "authError": None})
        elif _is_bad_token(error):
            self.auth_token = self.signed_auth_token = None
            self.respond_error(cid, error)
            self.transmit("#removeAuthToken")
        else:
            self.respond(cid, {"isAuthenticated": self.is_authenticated, "authError": dehydrate_error(error)})

    async def _on_remove_auth_token(self, data: Any, cid: int | float | None) -> None:
        self.auth_token = self.signed_auth_token = None
        if cid is not None:
            self.respond(cid)

    async def _on_subscribe(self, data: Any, cid: int | float | None) -> None:
        self._expire_token()
        channel = data.get("channel") if isinstance(data, dict) else None
        if not isinstance(channel, str):
            self._reply_error(cid, InvalidActionError("Subscribe channel name was malformatted"))
            return
        if len(channel) > self._server.config.max_channel_name:
            self._reply_error(cid, self._name_too_long())
            return
        assert isinstance(data, dict)
        if self._server.inbound_chain:
            action = Action(ActionType.SUBSCRIBE, socket=self, channel=channel, data=data.get("data"))
            blocked = await self._inbound(action)
            if blocked is not None:
                self._reply_error(cid, blocked)
                return
        if cid is None:  # socketcluster-server runs the middleware but does not subscribe
            return
        config = self._server.config
        hub = self._server.hub
        if hub.subscribers(channel) == 0 and hub.channel_count >= config.max_channels:
            self.respond_error(
                cid,
                BrokerError(
                    f"Failed to subscribe socket to the {channel} channel - the worker's limit of "
                    f"{config.max_channels} channels is reached"
                ),
            )
            return
        limit = config.socket_channel_limit
        if limit is not None and not hub.is_member(self, channel) and hub.channel_total(self) >= limit:
            self.respond_error(
                cid,
                BrokerError(
                    f"Failed to subscribe socket to the {channel} channel - InvalidActionError: "
                    f"Socket {self.id} tried to exceed the channel subscription limit of {limit}"
                ),
            )
            return
        try:
            await self._server.hub.subscribe(self, channel)
        except Exception as error:
            if not isinstance(error, BrokerUnavailable):
                log.exception("subscribing socket %s to %r failed", self.id, channel)
            self.respond_error(cid, subscribe_failed(channel, error))
            return
        self.respond(cid)

    async def _on_unsubscribe(self, data: Any, cid: int | float | None) -> None:
        if not isinstance(data, str):
            self._reply_error(cid, InvalidActionError("Unsubscribe channel name was malformatted"))
            return
        if not self._server.hub.is_member(self, data):
            self._reply_error(
                cid,
                BrokerError(
                    f"Failed to unsubscribe socket from the {data} channel - InvalidActionError: "
                    f"Socket {self.id} tried to unsubscribe from a channel which it is not subscribed to"
                ),
            )
            return
        self._server.hub.unsubscribe(self, data)
        if cid is not None:
            self.respond(cid)

    async def _on_publish(self, data: Any, cid: int | float | None) -> None:
        expired = self._expire_token()
        if not self._server.config.allow_client_publish:
            self._reply_error(cid, InvalidActionError("Client publish feature is disabled"))
            return
        channel = data.get("channel") if isinstance(data, dict) else None
        if not isinstance(channel, str):
            self._reply_error(cid, InvalidActionError("Publish channel name was malformatted"))
            return
        if len(channel) > self._server.config.max_channel_name:
            self._reply_error(cid, self._name_too_long())
            return
        assert isinstance(data, dict)
        payload = data.get("data")
        if self._server.inbound_chain:
            action = Action(
                ActionType.PUBLISH_IN,
                socket=self,
                channel=channel,
                data=payload,
                auth_token_expired_error=expired,
            )
            blocked = await self._inbound(action)
            if blocked is not None:
                self._reply_error(cid, blocked)
                return
            payload = action.data
        try:
            await self._server.publisher.publish(channel, payload)
        except (BrokerError, InvalidActionError) as error:
            self._reply_error(cid, error)
            return
        if cid is not None:
            self.respond(cid)

    def publish_inline(self, payload: bytes) -> bool:
        """Serve a plain ``#publish`` text frame without awaiting, if this worker can; else False.

        That takes the JSON codec, a broker that delivers in this process and no inbound
        middleware (see :meth:`~hubbub.protocol.JsonCodec.read_publish` for the form).
        """
        server = self._server
        read = server.read_publish
        if not (
            read is not None
            and server.publishes_inline
            and payload.startswith(_PUBLISH_PREFIX)
            and self._plain_publish_allowed()
        ):
            return False
        try:
            publish = read(payload.decode("utf-8"))
        except UnicodeDecodeError:
            return False
        if publish is None or len(publish.channel) > server.config.max_channel_name:
            return False
        server.stats.messages_in += 1
        if self.auth_token is not None:
            self._expire_token()
        server.publisher.publish_inline(publish.channel, publish.data, publish.packet_text)
        self.acknowledge(publish.cid)
        return True

    def _plain_publish_allowed(self) -> bool:
        """Whether a ``#publish`` may skip the general path: open, no inbound middleware, publish on."""
        server = self._server
        return (
            self.state is _OPEN
            and not server.inbound_raw_chain
            and not server.inbound_chain
            and server.config.allow_client_publish
        )

    async def _publish_plain(self, publish: ClientPublish) -> None:
        """``#publish`` with no inbound middleware, its packet text already known (the hot path)."""
        if self.auth_token is not None:
            self._expire_token()
        try:
            await self._server.publisher.publish(publish.channel, publish.data, prepared=publish.packet_text)
        except (BrokerError, InvalidActionError) as error:
            self.respond_error(publish.cid, error)
            return
        self.acknowledge(publish.cid)

    async def _on_invoke(self, event: str, data: Any, cid: int | float, expired: SCError | None) -> None:
        if self._server.inbound_chain:
            action = Action(
                ActionType.INVOKE, socket=self, procedure=event, data=data, auth_token_expired_error=expired
            )
            blocked = await self._inbound(action)
            if blocked is not None:
                self.respond_error(cid, blocked)
                return
            data = action.data
        procedure = self._server.app.procedures.get(event)
        if procedure is None:
            self.respond_error(cid, InvalidActionError(f"No procedure is registered for {event}"))
            return
        limit = self._server.config.max_pending_calls
        if self._pending_calls >= limit:
            self.respond_error(
                cid, InvalidActionError(f"Too many pending calls on this socket (limit {limit})")
            )
            return
        request = Request(self, event, data, cid)
        self._enqueue("p:" + event, self._run_procedure, procedure, request)

    def _enqueue(self, lane: str, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run ``fn(*args)`` after the earlier calls of the same lane, like one async stream per name.

        Calls of one procedure (or receiver) run one after another in arrival order, as the
        ``for await`` loops of a socketcluster-server app do; different names run concurrently.
        """
        if self._lanes is None:
            self._lanes = {}
        queue = self._lanes.get(lane)
        if queue is None:
            queue = self._lanes[lane] = deque()
            self.spawn(self._drain_lane, lane, queue)
        queue.append((fn, args))
        self._pending_calls += 1

    async def _drain_lane(self, lane: str, queue: deque[tuple[Callable[..., Awaitable[None]], Any]]) -> None:
        try:
            while queue:
                fn, args = queue.popleft()
                try:
                    await fn(*args)
                finally:
                    self._pending_calls -= 1
        finally:
            if self._lanes is not None and self._lanes.get(lane) is queue:
                del self._lanes[lane]

    async def _run_procedure(self, procedure: Callable[[Request], Awaitable[Any]], request: Request) -> None:
        try:
            result = await procedure(request)
        except Exception as error:
            if not isinstance(error, SCError):
                log.warning("procedure %s raised", request.procedure, exc_info=True)
            request.error(error)
        else:
            request.end(UNDEFINED if result is None else result)

    async def _on_transmit(self, event: str, data: Any, expired: SCError | None) -> None:
        action = Action(
            ActionType.TRANSMIT, socket=self, receiver=event, data=data, auth_token_expired_error=expired
        )
        if await self._inbound(action) is not None:
            return
        receiver = self._server.app.receivers.get(event)
        if receiver is None:
            return
        if self._pending_calls >= self._server.config.max_pending_calls:  # no reply to refuse it with
            log.info("socket %s: too many pending calls; closing it", self.id)
            self.disconnect(CloseCode.POLICY_VIOLATION, "Too many pending calls")
            return
        self._enqueue("r:" + event, self._run_receiver, receiver, action.data)

    async def _run_receiver(
        self, receiver: Callable[[ServerSocket, Any], Awaitable[None]], data: Any
    ) -> None:
        try:
            await receiver(self, data)
        except Exception:
            log.warning("receiver raised", exc_info=True)

    # -- teardown --------------------------------------------------------------------------

    def send_pending(self) -> None:
        """Hand what is queued to the kernel now instead of at the end of the scheduler step."""
        self._out.send_pending()

    def release(self) -> None:
        """The connection ends: send what is pending (best effort), fail pending invokes, cancel tasks."""
        self.send_pending()
        self._out.closed = True
        for call in (self._calls or {}).values():
            call.error = SCError("Socket connection closed", name="BadConnectionError")
            call.done.set()
        self._calls = None
        for scope in self._tasks or ():
            scope.cancel()
        self._out.detach()
        # websockets' protocol holds its frame parser, a generator holding the protocol: closing
        # the generator lets reference counting free the connection instead of the cycle collector.
        self.ws.parser.close()


_EventHandler = Callable[[ServerSocket, Any, "int | float | None"], Awaitable[None]]
_EVENT_HANDLERS: dict[str, _EventHandler] = {
    "#handshake": ServerSocket._on_handshake,
    "#authenticate": ServerSocket._on_authenticate,
    "#removeAuthToken": ServerSocket._on_remove_auth_token,
    "#subscribe": ServerSocket._on_subscribe,
    "#unsubscribe": ServerSocket._on_unsubscribe,
    "#publish": ServerSocket._on_publish,
}
