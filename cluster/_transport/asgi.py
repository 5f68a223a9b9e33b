"""A WebSocket connection that an ASGI server holds (a path of a FastAPI or Starlette app).

The ASGI server (uvicorn, hypercorn) does the HTTP upgrade, the framing and the WebSocket's own
pings; :class:`AsgiLink` turns its ``websocket.receive`` events into messages for the session and
the session's frames into ``websocket.send`` events, with the same limits as a connection on the
worker's own port: the payload size, the message rate, the pong timeout and the outbound backlog,
with flow control (:mod:`.flow`): a link's backlog is what it has queued for the ASGI server's
``send``, and a ``send`` that returns is progress.

The hub frames a publication once for every subscriber, for raw sockets; a link takes the payload
back out of the frame, and the last shared frame's payload is kept, so a publication to many ASGI
subscribers is decoded once, not once per subscriber. Sending still costs one ASGI event and one
write of the server's per subscriber: this path is for apps that want one port, the worker's
own listener for heavy fan-out.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import anyio.abc

from hubbub.protocol import CloseCode, ProtocolViolation

from .connection import ConnectionParts
from .link import NO_SINK, LinkState, MessageSink
from .state import SocketState

__all__ = ["AsgiLink", "Receive", "Scope", "Send"]

log = logging.getLogger("hubbub.server")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_CONNECTING, _OPEN, _CLOSING, _CLOSED = SocketState
_TEXT = 0x1


class _LastPayload:
    """The payload of the last frame unframed: a publication's one frame is decoded once for all."""

    __slots__ = ("_frame", "_payload")

    def __init__(self) -> None:
        self._frame = b""
        self._payload: str | bytes = ""

    def event(self, frame: bytes) -> dict[str, Any]:
        """The ``websocket.send`` event of a server frame (unmasked, unfragmented, no extensions)."""
        if frame is not self._frame:
            length = frame[1] & 0x7F
            payload = frame[2 if length < 126 else 4 if length == 126 else 10 :]
            self._payload = payload.decode("utf-8") if frame[0] & 0x0F == _TEXT else payload
            self._frame = frame
        if isinstance(self._payload, str):
            return {"type": "websocket.send", "text": self._payload}
        return {"type": "websocket.send", "bytes": self._payload}


_UNFRAME = _LastPayload()


class AsgiLink(LinkState):
    """One client connection served through an ASGI server's ``receive`` and ``send``."""

    __slots__ = ("_close_event", "_frames", "_group", "_send", "_size", "_wake")

    def __init__(self, send: Send, parts: ConnectionParts) -> None:
        self._send = send
        self._frames: deque[bytes] = deque()
        self._size = 0  # bytes of the queued frames
        self._wake = parts.loop.parking_lot()
        self._close_event: dict[str, Any] | None = None  # sent once the queued frames are
        self._group: anyio.abc.TaskGroup | None = None
        super().__init__(parts)

    @property
    def outbound_backlog(self) -> int:
        """Bytes queued for the ASGI server's ``send``."""
        return self._size

    # -- what flow control sees (a Congestible) ----------------------------------------------

    backlog = outbound_backlog

    @property
    def tag(self) -> MessageSink:
        """The subscriber this link writes for, as flow control names it to publishers."""
        return self.sink

    def stalled(self) -> None:
        """Congested without progress for the flow's timeout: close as a slow consumer."""
        if self._still_open():
            self.overflowed()

    def attach(self, sink: MessageSink) -> None:
        self.sink = sink

    # -- sending ---------------------------------------------------------------------------

    def send_frame(self, frame: bytes) -> None:
        """Queue a frame for the writer task; past the outbound limit, congested or closed (4010)."""
        if self.state is not _OPEN and self.state is not _CONNECTING:
            return
        self._frames.append(frame)
        self._size += len(frame)
        if self._size > self._parts.outbound_limit and self._over_limit():
            return
        if len(self._frames) == 1:
            self._wake.unpark_all()
            if self._parts.flow is not None:
                self._parts.flow.backlogged(self)

    send_own_frame = send_frame

    def _over_limit(self) -> bool:
        """The backlog passed the (soft) limit: congested, or closed past the hard limit (True)."""
        flow = self._parts.flow
        if flow is None or self._size > flow.hard_limit:
            self.overflowed()
            return True
        flow.congest(self)
        return False

    def overflowed(self) -> None:
        """Drop the queued frames, so that the close event goes out next, and close with 4010."""
        self._drop()
        super().overflowed()

    def _drop(self) -> None:
        self._frames.clear()
        self._size = 0
        if self._parts.flow is not None:
            self._parts.flow.release(self)

    async def _write(self) -> None:
        """Hand queued frames to the ASGI server in order, then the close event; runs until the end."""
        frames, send = self._frames, self._send
        flow, limit = self._parts.flow, self._parts.outbound_limit
        try:
            while True:
                while frames:
                    frame = frames.popleft()
                    self._size -= len(frame)
                    await send(_UNFRAME.event(frame))
                    if flow is not None and flow.congested:
                        flow.progress(self, self._size <= limit)
                if flow is not None:
                    flow.release(self)
                if self._close_event is not None:
                    await send(self._close_event)
                    return
                await self._wake.park()
        except Exception as error:  # the ASGI server could not send: the peer is gone
            log.debug("connection %x: send failed: %r", id(self), error)
            self.abort()

    # -- closing ---------------------------------------------------------------------------

    def disconnect(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Send the close event after what is queued; the connection is dropped after the close timeout."""
        if self.state is _CLOSING or self.state is _CLOSED:
            return
        self.close_code, self.close_reason = code, reason
        self._close_event = {"type": "websocket.close", "code": code, "reason": reason}
        self.close_deadline = self._parts.loop.current_time() + self._parts.close_timeout
        self.state = _CLOSING
        self._parts.timers.closing(self)
        self._wake.unpark_all()

    def abort(self) -> None:
        """End the connection now: the ASGI app returns and the server drops the socket."""
        if self.state is not _CLOSED:
            self.state = _CLOSED
            if self._group is not None:
                self._group.cancel_scope.cancel()

    def release(self) -> None:
        """The connection ended: cancel its tasks, drop what is queued and the reference to the session."""
        self.state = _CLOSED
        self.cancel_tasks()
        self._drop()
        self.sink = NO_SINK

    # -- reading ---------------------------------------------------------------------------

    async def run(self, receive: Receive, ended: Callable[[], None]) -> None:
        """Serve the connection until the client or the server closes it (the socket is accepted).

        ``ended()`` runs as soon as the connection ends for hubbub, before the wait for a ``send``
        the ASGI server has not returned from: hypercorn shields its socket writes from
        cancellation, so a peer that stopped reading holds one until hypercorn's own timeout.
        """
        async with anyio.create_task_group() as group:
            self._group = group
            group.start_soon(self._write)
            try:
                await self._read(receive)
            finally:
                group.cancel_scope.cancel()
                self._group = None
                ended()

    async def _read(self, receive: Receive) -> None:
        parts, bucket = self._parts, self._bucket
        current_time = parts.loop.current_time
        while True:
            event = await receive()
            kind = event["type"]
            if kind == "websocket.disconnect":
                if self.close_code is None:
                    self.close_code = int(event.get("code", CloseCode.NO_STATUS))
                    self.close_reason = str(event.get("reason") or "")
                return
            if kind != "websocket.receive" or not self._still_open():
                continue
            now = current_time()
            self._liveness.on_data(now)
            text: str | None = event.get("text")
            payload: bytes = text.encode("utf-8") if text is not None else bytes(event.get("bytes") or b"")
            if len(payload) > parts.max_payload:
                self.disconnect(CloseCode.MESSAGE_TOO_BIG, "Message too big")
                continue
            if bucket is not None:
                bucket.refill(now)
                if bucket.spend():
                    self.flooded()
                    continue
            if text is None or not self.sink.publish_inline(payload):
                parts.stats.messages_in += 1
                try:
                    await self.sink.on_message(text if text is not None else payload)
                except ProtocolViolation as violation:
                    self.disconnect(violation.code)
            holds = self._hold
            if holds is not None and parts.flow is not None:
                self._hold = None
                await parts.flow.wait(holds, self._still_open)
