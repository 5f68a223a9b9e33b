"""A hubbub worker: the accept loop, the HTTP upgrade, each connection's read loop, timers.

I/O is done on plain non-blocking sockets with trio's ``wait_readable``/``wait_writable``: a read is
tried first and waited for only when the kernel has nothing (or the last read emptied it), a write
goes straight to the kernel (see :mod:`.outbound`). One task per connection reads; nothing else
runs per connection unless a procedure, a receiver or a backed-up write needs it. One timer task
for the whole worker sends pings (spread over the interval) and enforces the handshake, pong and
close deadlines.
"""

from __future__ import annotations

import logging
import math
import os
import socket as stdsocket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import CLOSED, OPEN
from websockets.server import ServerProtocol

from hubbub.broker import Broker
from hubbub.protocol import ClientPublish, CloseCode, JsonCodec, ProtocolViolation, SCError, get_codec

from ._publisher import Publisher
from ._transport.framing import frame_message
from ._transport.handshake import recv_into, upgrade, ws_log
from ._transport.http import HttpRequest, json_response, origin_allowed, plain_response
from ._transport.listen import accept_loop, bind_listener
from ._transport.outbound import WriteBatch
from ._transport.state import SocketState
from ._transport.upgrade import KnownUpgrades
from .app import App
from .auth import JwtAuth
from .config import ServerConfig
from .hub import Hub
from .middleware import Action, ActionType, MiddlewareLine, run_middleware
from .socket import ServerSocket

__all__ = ["Server", "ServerStats", "bind_listener"]

log = logging.getLogger("hubbub.server")
_RECV_SIZE = 65536
_CONNECTING, _OPEN, _CLOSING, _CLOSED = SocketState


@dataclass(slots=True)
class ServerStats:
    """Counters of one worker."""

    connections_total: int = 0
    raw_messages: int = 0
    slow_consumer_disconnects: int = 0
    messages_in: int = 0
    #: Packets sent to clients outside the fan-out path (responses, events); see Hub.deliveries.
    messages_out: int = 0


class Server:
    """One worker process serving an :class:`App` over SocketCluster's protocol."""

    def __init__(self, app: App, config: ServerConfig, broker: Broker) -> None:
        self.app = app
        self.config = config
        self.broker = broker
        self.codec = get_codec(config.codec)
        #: Takes publications to the broker (clients' and the app's).
        self.publisher = Publisher(broker)
        #: Reads a client's plain ``#publish`` without the general decode (JSON codec only).
        self.read_publish: Callable[[str], ClientPublish | None] | None = (
            self.codec.read_publish if isinstance(self.codec, JsonCodec) else None
        )
        #: Plain client publishes are served synchronously from the read loop (JSON, memory broker).
        self.publishes_inline = self.read_publish is not None and self.publisher.inline
        chains = app.middleware_chains
        #: The app's inbound middleware (the lists themselves: later additions show here too).
        self.inbound_raw_chain = chains[MiddlewareLine.INBOUND_RAW]
        self.inbound_chain = chains[MiddlewareLine.INBOUND]
        self.auth = JwtAuth(config.auth_key, default_expiry=config.auth_default_expiry)
        self.stats = ServerStats()
        self.sockets: set[ServerSocket] = set()
        # The timer task's tick: a fraction of the shortest timeout, and a divisor of the ping interval.
        base_tick = max(
            0.02, min(1.0, config.ping_interval, config.handshake_timeout, config.close_timeout) / 4
        )
        self._ping_slots: list[set[ServerSocket]] = [
            set() for _ in range(max(1, math.ceil(config.ping_interval / base_tick)))
        ]
        self.connecting: set[ServerSocket] = set()
        self.closing: set[ServerSocket] = set()
        self._ping_frame = frame_message("" if config.protocol_version == 2 else "#1")
        self._hub: Hub | None = None
        self._nursery: trio.Nursery | None = None
        self._accepting = True
        self._all_closed = trio.Event()
        self._recv_view = memoryview(bytearray(_RECV_SIZE))
        self.write_batch = WriteBatch()
        #: Connections still in their HTTP phase, with the time their handshake timeout expires.
        self._upgrading: dict[stdsocket.socket, float] = {}
        self._known_upgrades = KnownUpgrades()
        #: This worker's number in a cluster (shown by /health and the metrics), None when alone.
        self.worker_id: int | None = None
        #: Renders /metrics as (body, content type); installed by hubbub.cluster.metrics.
        self.metrics: Callable[[], tuple[bytes, str]] | None = None
        app.bind(self.publisher)

    @property
    def hub(self) -> Hub:
        assert self._hub is not None, "the server is not running"
        return self._hub

    # -- running ---------------------------------------------------------------------------

    async def serve(
        self,
        listener: stdsocket.socket,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept and serve connections on ``listener`` until cancelled, then close every socket."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._hub = Hub(
                self.broker, nursery, self.app.middleware_chains[MiddlewareLine.OUTBOUND], self.codec
            )
            nursery.start_soon(self.write_batch.run)
            nursery.start_soon(self._timers)
            nursery.start_soon(accept_loop, listener, self._connection, nursery, self._is_accepting)
            task_status.started()

    def _is_accepting(self) -> bool:
        return self._accepting

    async def shutdown(self, code: int = CloseCode.SERVER_SHUTDOWN, timeout: float | None = None) -> None:
        """Stop accepting, close every socket with ``code`` and wait for them (bounded)."""
        self._accepting = False
        for sock in list(self.sockets | self.connecting):
            sock.disconnect(code, "Server is shutting down")
        with trio.move_on_after(timeout if timeout is not None else self.config.close_timeout + 1):
            while self.sockets or self.connecting or self.closing:
                self._all_closed = trio.Event()
                await self._all_closed.wait()

    def _ping_slot(self, sock: ServerSocket) -> set[ServerSocket]:
        return self._ping_slots[(hash(sock) >> 4) % len(self._ping_slots)]

    async def _timers(self) -> None:
        # Every tick pings one slot of the open sockets, so each socket is pinged once per ping
        # interval, always at the same phase, and the pongs of many sockets never come at once.
        config = self.config
        slots = self._ping_slots
        tick = config.ping_interval / len(slots)
        slot = 0
        next_tick = trio.current_time() + tick
        while True:
            await trio.sleep_until(next_tick)
            next_tick += tick
            now = trio.current_time()
            for sock in list(slots[slot]):
                if sock.liveness.expired(now):
                    sock.disconnect(CloseCode.CLIENT_PONG_TIMEOUT)
                else:
                    sock.send_frame(self._ping_frame)
            slot = (slot + 1) % len(slots)
            for raw, deadline in list(self._upgrading.items()):
                if now > deadline:
                    del self._upgrading[raw]
                    trio.lowlevel.notify_closing(raw)
            for sock in list(self.connecting):
                if now - sock.opened_at > config.handshake_timeout:
                    sock.disconnect(CloseCode.HANDSHAKE_TIMEOUT)
            for sock in list(self.closing):
                if now > sock.close_deadline:
                    sock.abort()

    # -- one connection --------------------------------------------------------------------

    async def _connection(self, raw: stdsocket.socket, address: Any) -> None:
        self.stats.connections_total += 1
        sock: ServerSocket | None = None
        try:
            # The timer task enforces the handshake timeout of the HTTP phase (no cancel scope
            # per connection): it wakes the waiting read with ClosedResourceError.
            self._upgrading[raw] = trio.current_time() + self.config.handshake_timeout
            try:
                remote = address if isinstance(address, tuple) else None
                limits = (self.config.max_request_head, self.config.max_payload)
                view = self._recv_view
                upgraded = await upgrade(raw, remote, view, self._known_upgrades, limits, self._http_answer)
            except trio.ClosedResourceError:
                upgraded = None
            if self._upgrading.pop(raw, None) is None:  # timed out meanwhile
                upgraded = None
            if upgraded is not None:
                http_request, leftover = upgraded
                # A fresh protocol for the frames: the handshake one keeps the parsed request
                # (headers and all) alive in its parser for as long as it lives.
                ws = ServerProtocol(state=OPEN, max_size=self.config.max_payload, logger=ws_log)
                sock = ServerSocket(self, http_request, ws, raw)
                self.connecting.add(sock)
                await self._read_loop(raw, ws, sock, leftover)
        except Exception:
            log.exception("connection from %s failed", address)
        finally:
            if sock is not None:
                self._forget(sock)
            if sock is None or sock.outbound_backlog:  # else no task can be waiting on the socket
                trio.lowlevel.notify_closing(raw)
            raw.close()

    def status_response(self, path: str, *, public: bool = False) -> Response | None:
        """The answer to ``/health``, ``/ready`` or ``/metrics`` (None for any other path).

        ``public``: the request came on the main port, where (unless ``public_metrics``) only a
        bare ``/health`` and ``/ready`` are answered, telling nobody pid, counters or memory.
        """
        details = not public or self.config.public_metrics
        if path == "/health" and not details:
            return json_response(200, "OK", {"status": "ok"})
        if path == "/health":
            return json_response(
                200,
                "OK",
                {
                    "status": "ok",
                    "connections": len(self.sockets),
                    "worker": self.worker_id,
                    "pid": os.getpid(),
                },
            )
        if path == "/ready":
            ready = self.broker.ready and self._accepting
            return json_response(
                200 if ready else 503, "OK" if ready else "Service Unavailable", {"ready": ready}
            )
        if path == "/metrics" and self.metrics is not None and details:
            body, content_type = self.metrics()
            return plain_response(200, "OK", body, content_type)
        return None

    async def _http_answer(self, http_request: HttpRequest) -> Response | None:
        """The HTTP response to a request that must not become a WebSocket, else None."""
        path = http_request.path
        status = self.status_response(path, public=True)
        if status is not None:
            return status
        if path != self.config.path:
            return plain_response(400, "Bad Request", b"Bad Request", "text/plain")
        origin = http_request.header("Origin")
        if not origin_allowed(origin, self.config.origins):
            body = f"Failed to authorize socket handshake - Invalid origin: {origin}".encode()
            return plain_response(403, "Forbidden", body, "text/html")
        if not self._accepting or len(self.sockets) + len(self.connecting) >= self.config.max_connections:
            return plain_response(503, "Service Unavailable", b"Server is at capacity", "text/plain")
        chain = self.app.middleware_chains[MiddlewareLine.HANDSHAKE]
        if chain:
            action = Action(ActionType.HANDSHAKE_WS, request=http_request)
            blocked = await run_middleware(chain, action)
            if blocked is not None:
                message = blocked.message if isinstance(blocked, SCError) else str(blocked)
                return plain_response(401, "Unauthorized", message.encode(), "text/html")
        return None

    async def _read_loop(
        self, raw: stdsocket.socket, ws: ServerProtocol, sock: ServerSocket, leftover: bytes
    ) -> None:
        fragments: list[bytes] = []
        fragment_opcode = Opcode.TEXT
        half_closed = False
        view = self._recv_view
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
                    if sock.state is _CLOSED:
                        return
                    try:
                        await trio.lowlevel.wait_readable(raw)
                    except trio.ClosedResourceError:
                        return
                    continue
                wait_first = 0 < received < _RECV_SIZE
                if received:
                    sock.liveness.on_data(trio.current_time())
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
                        fragments, fragment_opcode = [bytes(frame.data)], opcode
                        continue
                    payload, is_text = bytes(frame.data), opcode is Opcode.TEXT
                elif opcode is Opcode.CONT:
                    fragments.append(bytes(frame.data))
                    if not frame.fin:
                        continue
                    payload, is_text = b"".join(fragments), fragment_opcode is Opcode.TEXT
                    fragments = []
                else:
                    continue
                if is_text and sock.publish_inline(payload):
                    if sock.state is not _OPEN:
                        break
                    continue
                if not await self._dispatch(ws, sock, payload, is_text):
                    break
            sock.flush_ws()
            if not received or ws.state is CLOSED or sock.state is _CLOSED:
                return
            if ws.eof_sent and not half_closed:
                # websockets ended the WebSocket (a completed close handshake, or a failure such
                # as 1009/1002): the peer now waits for the TCP close.
                half_closed = True
                if self._end_tcp(raw, sock):
                    return

    def _end_tcp(self, raw: stdsocket.socket, sock: ServerSocket) -> bool:
        """After the WebSocket ended: True to close the connection now, else half-close it.

        After a completed close handshake the peer sends nothing more, so once the close frame
        is written the connection is closed at once. After a failure (1009, 1002) the peer may
        still be sending: FIN is sent once the close frame is written and reading goes on to
        EOF (bounded by the close timeout), so its data never meets a reset that could destroy
        the close frame before it is read.
        """
        if sock.state is _OPEN or sock.state is _CONNECTING:
            sent = sock.ws.close_sent
            sock.close_code = sent.code if sent is not None else CloseCode.ABNORMAL
            sock.close_deadline = trio.current_time() + self.config.close_timeout
            sock.state = _CLOSING
            self.closing.add(sock)
        sock.send_pending()
        if sock.outbound_backlog:
            return False
        if sock.ws.close_rcvd is not None:
            return True
        try:
            raw.shutdown(stdsocket.SHUT_WR)
        except OSError:
            pass
        return False

    async def _dispatch(self, ws: ServerProtocol, sock: ServerSocket, payload: bytes, is_text: bool) -> bool:
        """Hand one message to the socket; False when the connection must stop reading."""
        self.stats.messages_in += 1
        message: str | bytes
        if is_text:
            try:
                message = payload.decode("utf-8")
            except UnicodeDecodeError:
                sock.disconnect(CloseCode.INVALID_DATA, "Invalid UTF-8")
                return False
        else:
            message = bytes(payload)
        try:
            await sock.handle_message(message)
        except ProtocolViolation as violation:
            sock.disconnect(violation.code)
            return False
        return sock.state is _OPEN or sock.state is _CONNECTING

    # -- bookkeeping -----------------------------------------------------------------------

    def socket_opened(self, sock: ServerSocket) -> None:
        self.connecting.discard(sock)
        self.sockets.add(sock)
        self._ping_slot(sock).add(sock)
        for hook in self.app.connection_hooks:
            self.spawn(hook, sock)

    def _forget(self, sock: ServerSocket) -> None:
        was_open = sock in self.sockets
        self.sockets.discard(sock)
        self._ping_slot(sock).discard(sock)
        self.connecting.discard(sock)
        self.closing.discard(sock)
        sock.state = _CLOSED
        if not (self.sockets or self.connecting or self.closing):
            self._all_closed.set()
        sock.release()
        self.hub.remove(sock)
        if was_open:
            code = sock.close_code if sock.close_code is not None else CloseCode.ABNORMAL
            for hook in self.app.disconnection_hooks:
                self.spawn(hook, sock, code, sock.close_reason)

    def slow_consumer(self, sock: ServerSocket) -> None:
        """Close a socket whose outbound backlog passed the limit (4010)."""
        self.stats.slow_consumer_disconnects += 1
        log.info("socket %s: outbound buffer overflow, closing with %d", sock.id, CloseCode.SLOW_CONSUMER)
        sock.disconnect(CloseCode.SLOW_CONSUMER, "Outbound buffer overflow")

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in the worker's nursery; an exception is logged, never fatal."""
        assert self._nursery is not None
        self._nursery.start_soon(_guarded, fn, *args)


async def _guarded(fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
    try:
        await fn(*args)
    except Exception:
        log.exception("application hook %r failed", fn)
