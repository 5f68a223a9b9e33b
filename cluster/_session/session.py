"""One client's session: its SocketCluster state, the packets it is sent and the messages it sends.

Inbound packets are processed strictly in order, each waiting for its middleware, as
socketcluster-server does; what to do with each event is the table in :mod:`.events`. A plain
``#publish`` from a JSON client is served without the general decode (:meth:`Session.publish_inline`).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from hubbub.protocol import (
    PUBLISH_PREFIX,
    UNDEFINED,
    AuthTokenExpiredError,
    BrokerError,
    ClientPublish,
    Codec,
    Connection,
    Heartbeat,
    InvalidActionError,
    Packet,
    Role,
    SCError,
    State,
    dehydrate_error,
    response_packet,
    transmit_packet,
)
from hubbub.protocol import Response as ResponsePacket

from .._app import App
from .._app_errors import unencodable
from .._config import ServerConfig
from .._hub import Hub, Publication
from .._loop import TRIO, Loop
from .._middleware import Action, ActionType, Middleware, MiddlewareLine, run_middleware
from .._publisher import Publisher
from .._recovery import HistoryChannels
from .._socket import ServerSocket, make_socket_id
from .._stats import ServerStats
from .._transport.flow import FlowControl
from .._transport.framing import frame_message, frame_text
from .._transport.http import HttpRequest
from .._transport.link import Link
from .._transport.state import SocketState
from .._users import UserIndex
from ..auth import JwtAuth
from .calls import Calls
from .lanes import Lanes

__all__ = ["FILTERED_BACKLOG", "Session", "SessionParts", "after_publish", "allowed", "inbound"]

log = logging.getLogger("hubbub.socket")
_PUBLISH_PREFIX = PUBLISH_PREFIX.encode()
_OPEN = SocketState.OPEN


@dataclass(eq=False, slots=True)
class SessionParts:
    """What the sessions of one worker share (built once by the worker)."""

    config: ServerConfig
    codec: Codec
    auth: JwtAuth
    app: App
    hub: Hub
    publisher: Publisher
    stats: ServerStats
    #: The app's inbound middleware (the lists themselves: later additions show here too).
    inbound_raw_chain: list[Middleware]
    inbound_chain: list[Middleware]
    #: The app's outbound middleware: while it is not empty, publishers wait for long filter queues.
    outbound_chain: list[Middleware]
    #: Reads a client's plain ``#publish`` without the general decode (JSON codec only).
    read_publish: Callable[[str], ClientPublish | None] | None
    #: Plain client publishes are served synchronously from the read loop (JSON, in-process broker).
    publishes_inline: bool
    #: Processes one inbound packet (the event table, :func:`.events.process`).
    process: Callable[[Session, Packet], Awaitable[None]]
    #: Called when a session completes its handshake.
    opened: Callable[[Session], None]
    #: The worker's flow control: a client that publishes to congested subscribers waits.
    flow: FlowControl
    #: The channels with history (None when no channel rule gives any).
    history: HistoryChannels | None = None
    #: The users of this worker's connections (their tokens' ``user_claim``).
    users: UserIndex[Session] = field(default_factory=lambda: UserIndex("sub"))
    #: The worker's event loop primitives.
    loop: Loop = TRIO


# Most connections never see a procedure, an invoke or app code holding them: a session makes its
# lanes, its call table and the app's handle on first use, which keeps an idle one small.
class Session:
    """A connected SocketCluster client, as the worker sees it; :attr:`handle` is what apps hold."""

    __slots__ = (
        "_batch",
        "_calls",
        "_conn",
        "_handle",
        "_lanes",
        "auth_token",
        "filtered",
        "id",
        "link",
        "parts",
        "request",
        "signed_auth_token",
    )

    def __init__(self, link: Link, request: HttpRequest, parts: SessionParts) -> None:
        #: The connection; the hub's fan-out sends through its ``send_frame``.
        self.link = link
        self.parts = parts
        self._conn = Connection(Role.SERVER, parts.codec, parts.config.protocol_version)
        self._batch: list[Any] | None = None
        self.filtered: deque[Publication] | None = None
        self._calls: Calls | None = None
        self._lanes: Lanes | None = None
        #: None until first asked for, False once the connection has ended.
        self._handle: ServerSocket | Literal[False] | None = None
        self.id = make_socket_id()
        self.request = request
        #: The verified token payload while authenticated, else None.
        self.auth_token: dict[str, Any] | None = None
        self.signed_auth_token: str | None = None
        link.attach(self)

    @property
    def handle(self) -> ServerSocket | None:
        """What app code holds for this client (the same object every time); None once it has ended."""
        handle = self._handle
        if handle is None:
            handle = self._handle = ServerSocket(self)
        return handle or None

    @property
    def ended(self) -> bool:
        """Whether the connection has ended (:meth:`release` ran)."""
        return self._handle is False

    @property
    def lanes(self) -> Lanes:
        """The ordered lanes the app's procedures and receivers run in."""
        lanes = self._lanes
        if lanes is None:
            lanes = self._lanes = Lanes(self.link.spawn)
        return lanes

    def resolve(self, packet: ResponsePacket) -> None:
        """A response from the client: complete the invoke it answers (if any is waiting)."""
        if self._calls is not None:
            self._calls.resolve(packet)

    @property
    def channels(self) -> frozenset[str]:
        return self.parts.hub.channels_of(self)

    def open(self) -> bool:
        """The handshake completed: the protocol and the connection are open; False if they were already."""
        first = self._conn.state is State.CONNECTING
        self._conn.handshake_complete()
        self.link.open()
        return first

    # -- sending ---------------------------------------------------------------------------

    def send_packet(self, packet: Any) -> None:
        if self._batch is not None:
            self._batch.append(packet)
        else:
            self.link.send_own_frame(frame_message(self._conn.encode(packet)))
        self.parts.stats.messages_out += 1

    def transmit(self, event: str, data: Any = None) -> None:
        self.send_packet(transmit_packet(event, data))

    def respond(self, cid: int | float, data: Any = UNDEFINED) -> None:
        try:
            self.send_packet(response_packet(cid, data))
        except Exception as error:  # the codec cannot encode ``data``: the call is answered all the same
            self.respond_error(cid, unencodable(error, self.id))

    def respond_error(self, cid: int | float, error: BaseException | dict[str, Any]) -> None:
        self.send_packet(response_packet(cid, error=dehydrate_error(error)))

    def reply_error(self, cid: int | float | None, error: BaseException) -> None:
        """Answer an invoke with ``error`` (a transmit gets no answer)."""
        if cid is not None:
            self.respond_error(cid, error)

    def acknowledge(self, cid: int) -> None:
        """:meth:`respond` with no data, for a JSON worker's hot path: ``{"rid":cid}`` built as text."""
        if self._batch is not None or self._conn.codec.binary:
            self.respond(cid)
            return
        self.parts.stats.messages_out += 1
        self.link.send_own_frame(frame_text(b'{"rid":%d}' % cid))

    def start_batch(self) -> None:
        if self._batch is None:
            self._batch = []

    def flush_batch(self) -> None:
        batch, self._batch = self._batch, None
        if batch:
            _send_batch(self, batch)

    async def invoke(self, event: str, data: Any = None, *, timeout: float | None = None) -> Any:
        """Call ``event`` on the client and return its answer (see :meth:`ServerSocket.invoke`)."""
        if self.link.state is SocketState.CLOSED:
            raise SCError("Socket is closed", name="BadConnectionError")
        calls = self._calls
        if calls is None:
            calls = self._calls = Calls()
        timeout = timeout or self.parts.config.ack_timeout
        return await calls.invoke(self.send_packet, event, data, timeout, self.parts.loop)

    # -- auth ------------------------------------------------------------------------------

    def sign_token(self, claims: dict[str, Any], expires_in: float | None) -> tuple[str, dict[str, Any]]:
        """A signed token for ``claims`` and its payload."""
        return self.parts.auth.sign_claims(claims, expires_in=expires_in)

    def set_token(self, token: dict[str, Any] | None, signed: str | None) -> None:
        if token is not None or self.auth_token is not None:  # the user index holds only sessions with one
            self.parts.users.token_changed(self, token)
        self.auth_token, self.signed_auth_token = token, signed

    def expire_token(self) -> SCError | None:
        """Drop the token if it has expired (telling the client); the error middleware sees then."""
        exp = self.auth_token.get("exp") if self.auth_token else None
        if not isinstance(exp, int | float) or time.time() <= exp:
            return None
        self.set_token(None, None)
        self.transmit("#removeAuthToken")
        return AuthTokenExpiredError("Token expired", isBadToken=True)

    # -- channels --------------------------------------------------------------------------

    def kick_out(self, channel: str | None, message: str | None) -> None:
        hub = self.parts.hub
        for name in hub.channels_of(self) if channel is None else [channel]:
            if hub.is_member(self, name):
                hub.unsubscribe(self, name)
                self.transmit("#kickOut", {"channel": name, "message": message})

    def filtering(self) -> int:
        return len(self.filtered) if self.filtered else 0

    def deliver_filtered(self, publication: Publication) -> None:
        """Queue a delivery that must pass the outbound middleware; one drain task keeps the order."""
        queue = self.filtered
        if queue is None:
            queue = self.filtered = deque()
            self.link.spawn(_drain_filtered, self, queue)
        queue.append(publication)

    # -- inbound (the connection's MessageSink) ------------------------------------------------

    async def on_message(self, message: str | bytes) -> None:
        """Process one complete WebSocket message from the client."""
        parts = self.parts
        read_publish = parts.read_publish
        if read_publish is not None and message.__class__ is str and self.plain_publish_allowed():
            publish = read_publish(message)
            if publish is not None and len(publish.channel) <= parts.config.max_channel_name:
                await self._publish_plain(publish)
                return
        raw_chain = parts.inbound_raw_chain
        if raw_chain:
            action = Action(ActionType.MESSAGE, socket=self.handle, data=message)
            if await run_middleware(raw_chain, action) is not None:
                return
        link = self.link
        for item in self._conn.receive(message):
            if isinstance(item, Heartbeat):
                self.expire_token()
                continue
            await parts.process(self, item)
            if link.state is not _OPEN and link.state is not SocketState.CONNECTING:
                return

    def publish_inline(self, payload: bytes) -> bool:
        """Serve a plain ``#publish`` text frame without awaiting, if this worker can; else False.

        That takes the JSON codec, a broker that delivers in this process and no inbound
        middleware (see :meth:`~hubbub.protocol.JsonCodec.read_publish` for the form).
        """
        parts = self.parts
        read = parts.read_publish
        if not (
            read is not None
            and parts.publishes_inline
            and payload.startswith(_PUBLISH_PREFIX)
            and self.plain_publish_allowed()
        ):
            return False
        try:
            publish = read(payload.decode("utf-8"))
        except UnicodeDecodeError:
            return False
        if publish is None or len(publish.channel) > parts.config.max_channel_name:
            return False
        if parts.history is not None and parts.publisher.history_options(publish.channel) is not None:
            return False
        parts.stats.messages_in += 1
        if self.auth_token is not None:
            self.expire_token()
        parts.publisher.publish_inline(publish.channel, publish.data, publish.packet_text)
        self.acknowledge(publish.cid)
        after_publish(self, publish.channel)
        return True

    def plain_publish_allowed(self) -> bool:
        """Whether a ``#publish`` may skip the general path: open, no inbound middleware, publish on."""
        parts = self.parts
        return (
            self.link.state is _OPEN
            and not parts.inbound_raw_chain
            and not parts.inbound_chain
            and parts.config.allow_client_publish
        )

    async def _publish_plain(self, publish: ClientPublish) -> None:
        """``#publish`` with no inbound middleware, its packet text already known (the hot path)."""
        if self.auth_token is not None:
            self.expire_token()
        try:
            await self.parts.publisher.publish(publish.channel, publish.data, prepared=publish.packet_text)
        except (BrokerError, InvalidActionError) as error:
            self.respond_error(publish.cid, error)
            return
        self.acknowledge(publish.cid)
        after_publish(self, publish.channel)

    def release(self) -> None:
        """The connection ended: fail pending invokes, leave every channel, drop the handle."""
        if self._calls is not None:
            self._calls.fail_all()
        self.parts.hub.remove(self)
        self._handle = False


async def inbound(session: Session, action: Action) -> BaseException | None:
    """Run the inbound middleware on ``action``; the blocking error or None."""
    chain = session.parts.inbound_chain
    return await run_middleware(chain, action) if chain else None


async def allowed(session: Session, cid: int | float | None, action: Action) -> bool:
    """Run the inbound middleware on ``action``; a blocked invoke is answered with the error."""
    blocked = await inbound(session, action)
    if blocked is None:
        return True
    session.reply_error(cid, blocked)
    return False


def _send_batch(session: Session, batch: list[Any]) -> None:
    try:
        session.send_packet(batch)
    except Exception:  # a packet the codec cannot encode: send each alone, answering the calls
        for packet in batch:
            _send_alone(session, packet)


def _send_alone(session: Session, packet: Any) -> None:
    try:
        session.send_packet(packet)
    except Exception as error:
        rid = packet.get("rid") if isinstance(packet, dict) else None
        if rid is None:
            log.warning("socket %s: a packet the codec cannot encode was dropped: %s", session.id, error)
        else:
            session.respond_error(rid, unencodable(error, session.id))


async def _drain_filtered(session: Session, queue: deque[Publication]) -> None:
    """Pass queued deliveries through the outbound middleware, in order, then send what it allows.

    Data the middleware leaves as it is goes in the publication's one frame, shared by every
    subscriber; data it replaces is encoded for this socket alone.
    """
    hub = session.parts.hub
    chain = session.parts.app.middleware_chains[MiddlewareLine.OUTBOUND]
    try:
        flow = session.parts.flow
        while queue:
            publication = queue.popleft()
            if len(queue) == FILTERED_BACKLOG:
                flow.wake()
            channel, data = publication.channel, publication.data
            action = Action(ActionType.PUBLISH_OUT, socket=session.handle, channel=channel, data=data)
            if await run_middleware(chain, action) is not None or not hub.is_member(session, channel):
                continue
            if action.data is data:
                frame = publication.frame()
                if frame is None:
                    continue
                session.link.send_frame(frame)
            else:
                try:
                    session.transmit("#publish", publication.packet_data(action.data))
                except RecursionError:  # middleware made it deeper than the codec writes
                    log.info(
                        "dropped a publication on %r for socket %s: nested too deeply", channel, session.id
                    )
                    continue
            hub.delivered()
    finally:
        session.filtered = None


#: Publications queued for a subscriber's outbound middleware past which its publishers wait.
FILTERED_BACKLOG = 64


def after_publish(session: Session, channel: str) -> None:
    """After ``session`` published to ``channel``: read no more from it while that holds back subscribers.

    Costs two attribute checks when nothing is congested and no outbound middleware is installed.
    """
    parts = session.parts
    flow, hub, filtered = parts.flow, parts.hub, parts.outbound_chain
    if not (flow.congested or flow.over_worker_limit or filtered):
        return

    def holds() -> bool:
        return flow.holds(hub.members(channel)) or (
            bool(filtered) and hub.filters_behind(channel, FILTERED_BACKLOG)
        )

    session.link.hold_reading(holds)
