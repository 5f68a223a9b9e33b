"""One WebSocket connection: the raw socket, websockets' frame parser, the read loop and closing.

:class:`WsConnection` reads with a non-blocking ``recv_into`` first and waits for readability
only when the kernel has nothing, reassembles fragmented messages, checks that text is UTF-8, and
hands each complete message to its :class:`MessageSink`. It owns the connection's
:class:`SocketState`, its close handshake and deadline, its liveness (any data from the peer
resets the pong timer) and the tasks run on its behalf (cancelled when it ends).
"""

from __future__ import annotations

import logging
import socket as stdsocket

import trio
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.protocol import CLOSED, OPEN
from websockets.server import ServerProtocol

from hubbub.protocol import CloseCode, ProtocolViolation

from .handshake import recv_into, ws_log
from .link import NO_SINK, ConnectionParts, LinkState, MessageSink
from .outbound import Outbound
from .state import SocketState

__all__ = ["ConnectionParts", "WsConnection"]

log = logging.getLogger("hubbub.server")
RECV_SIZE = 65536
_CONNECTING, _OPEN, _CLOSING, _CLOSED = SocketState


class WsConnection(LinkState):
    """One client connection after its HTTP upgrade."""

    __slots__ = ("_close_written", "_out", "_raw", "ws")

    def __init__(self, raw: stdsocket.socket, parts: ConnectionParts) -> None:
        self._raw = raw
        self._parts = parts
        # A fresh protocol for the frames: the handshake one keeps the parsed request (headers
        # and all) alive in its parser for as long as it lives.
        self.ws = ServerProtocol(state=OPEN, max_size=parts.max_payload, logger=ws_log)
        self._out = Outbound(raw, parts.outbound_limit, self, parts.write_batch, parts.flow)
        self._close_written = False
        super().__init__(parts)

    @property
    def outbound_backlog(self) -> int:
        return self._out.backlog

    def attach(self, sink: MessageSink) -> None:
        """Give complete messages to ``sink``, which is also what flow control calls this connection."""
        self.sink = sink
        self._out.tag = sink

    # -- sending ---------------------------------------------------------------------------

    def send_frame(self, frame: bytes) -> None:
        """Send a framed message while connecting or open (else it is dropped)."""
        if self.state is _OPEN or self.state is _CONNECTING:
            self._out.write(frame)

    def send_own_frame(self, frame: bytes) -> None:
        """:meth:`send_frame` for a frame only this connection sends (a response, an event)."""
        if self.state is _OPEN or self.state is _CONNECTING:
            self._out.write(frame, True)

    def flush_ws(self) -> None:
        """Write what the WebSocket layer produced (close frames, pongs to control pings).

        Until a close frame is among it, it is pongs, which count against the outbound limit like
        any frame (a client that pings and never reads must not pile them up); the close frame
        goes out whatever the limit, and nothing after it (pongs to a peer that is being closed).
        """
        ws = self.ws
        data = ws.data_to_send()
        if not data or self._close_written:
            return
        out = self._out
        if ws.close_sent is None and not ws.eof_sent:
            for chunk in data:
                if chunk:
                    out.write(chunk, True)
            return
        self._close_written = True
        for chunk in data:
            if chunk:
                out.write_final(chunk)

    def send_pending(self) -> None:
        """Hand what is queued to the kernel now instead of at the end of the scheduler step."""
        self._out.send_pending()

    # -- tasks and faults (the Outbound's owner) ----------------------------------------------

    # -- closing ---------------------------------------------------------------------------

    def disconnect(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Start the close handshake with ``code``; the connection is dropped after the close timeout."""
        if self.state is _CLOSING or self.state is _CLOSED:
            return
        self.close_code, self.close_reason = code, reason
        try:
            self.ws.send_close(code, reason)
        except InvalidState:
            pass
        self.flush_ws()
        self._closing()

    def _closing(self) -> None:
        self.close_deadline = self._parts.loop.current_time() + self._parts.close_timeout
        self.state = _CLOSING
        self._parts.timers.closing(self)

    def abort(self) -> None:
        """Drop the TCP connection now, without a close handshake."""
        if self.state is not _CLOSED:
            self.state = _CLOSED
            self._parts.loop.notify_closing(self._raw)

    def release(self) -> None:
        """The connection ends: send what is pending (best effort), cancel its tasks, drop references."""
        self.state = _CLOSED
        self._out.send_pending()
        self._out.closed = True
        self.cancel_tasks()
        self._out.detach()
        self.sink = NO_SINK
        # websockets' protocol holds its frame parser, a generator holding the protocol: closing
        # the generator lets reference counting free the connection instead of the cycle collector.
        self.ws.parser.close()

    # -- reading ---------------------------------------------------------------------------

    async def run(self, leftover: bytes) -> None:
        """Read and dispatch messages until the connection ends (``leftover``: bytes read with the upgrade)."""
        raw, ws = self._raw, self.ws
        fragments: bytearray | None = None  # a fragmented message being reassembled
        fragment_opcode = Opcode.TEXT
        half_closed = False
        view, bucket = self._parts.recv_view, self._bucket
        wait_readable, current_time = self._parts.loop.wait_readable_kept, self._parts.loop.current_time
        if leftover:  # frames the client sent right behind its upgrade request
            ws.receive_data(leftover)
        received = 1
        # A read that did not fill the buffer took all the kernel had: the next one waits first
        # instead of spending a syscall on EAGAIN (readiness is level-triggered, nothing is missed).
        # So does the first: clients wait for the 101 before they send a frame.
        wait_first = True
        while True:
            if received and not leftover:
                if not wait_first:
                    received = recv_into(raw, view)
                if wait_first or received < 0:  # wait outside the except block (no exception kept alive)
                    wait_first = False
                    if self.state is _CLOSED:
                        return
                    try:
                        await wait_readable(raw)
                    except trio.ClosedResourceError:
                        return
                    continue
                wait_first = 0 < received < RECV_SIZE
                if received:
                    now = current_time()
                    self._liveness.on_data(now)
                    if bucket is not None:
                        bucket.refill(now)
                    ws.receive_data(view[:received].tobytes())
                else:
                    ws.receive_eof()
            leftover = b""
            for frame in ws.events_received():
                if not isinstance(frame, Frame):
                    continue
                opcode = frame.opcode
                if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                    if not frame.fin:
                        fragments, fragment_opcode = bytearray(frame.data), opcode
                        continue
                    payload, is_text = bytes(frame.data), opcode is Opcode.TEXT
                elif opcode is Opcode.CONT and fragments is not None:  # websockets checks the order
                    fragments += frame.data  # one growing buffer, not an object per fragment
                    if not frame.fin:
                        continue
                    payload, is_text = bytes(fragments), fragment_opcode is Opcode.TEXT
                    fragments = None
                else:
                    continue
                if bucket is not None and bucket.spend():
                    self.flooded()
                    break
                if is_text and self.sink.publish_inline(payload):
                    if self.state is not _OPEN:
                        break
                    continue
                if not await _dispatch(self, payload, is_text):
                    break
            self.flush_ws()
            if not received or ws.state is CLOSED or self.state is _CLOSED:
                return
            holds = self._hold
            if holds is not None and self._parts.flow is not None:
                self._hold = None
                self.send_pending()
                await self._parts.flow.wait(holds, self._still_open)
            if ws.eof_sent and not half_closed:
                # websockets ended the WebSocket (a completed close handshake, or a failure such
                # as 1009/1002): the peer now waits for the TCP close.
                half_closed = True
                if _end_tcp(self):
                    return


def _end_tcp(self: WsConnection) -> bool:
    """After the WebSocket ended: True to close the connection now, else half-close it.

    After a completed close handshake the peer sends nothing more, so once the close frame
    is written the connection is closed at once. After a failure (1009, 1002) the peer may
    still be sending: FIN is sent once the close frame is written and reading goes on to
    EOF (bounded by the close timeout), so its data never meets a reset that could destroy
    the close frame before it is read.
    """
    if self.state is _OPEN or self.state is _CONNECTING:
        sent = self.ws.close_sent
        self.close_code = sent.code if sent is not None else CloseCode.ABNORMAL
        self._closing()
    self._out.send_pending()
    if self._out.backlog:
        return False
    if self.ws.close_rcvd is not None:
        return True
    try:
        self._raw.shutdown(stdsocket.SHUT_WR)
    except OSError:
        pass
    return False


async def _dispatch(self: WsConnection, payload: bytes, is_text: bool) -> bool:
    """Hand one message to the sink; False when the connection must stop reading."""
    self._parts.stats.messages_in += 1
    message: str | bytes
    if is_text:
        try:
            message = payload.decode("utf-8")
        except UnicodeDecodeError:
            self.disconnect(CloseCode.INVALID_DATA, "Invalid UTF-8")
            return False
    else:
        message = bytes(payload)
    try:
        await self.sink.on_message(message)
    except ProtocolViolation as violation:
        self.disconnect(violation.code)
        return False
    return self.state is _OPEN or self.state is _CONNECTING
