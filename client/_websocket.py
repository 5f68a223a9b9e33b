"""A small WebSocket client over anyio streams, driven by websockets' sans-I/O ``ClientProtocol``.

It does only what the SocketCluster client needs: open (TCP, optional TLS, HTTP upgrade), send and
receive whole messages, close with a code. WebSocket control pings are answered by the protocol
object itself; SocketCluster's own heartbeat is an ordinary data frame handled above this layer.
"""

from __future__ import annotations

import ssl
import sys
from collections import deque
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.abc
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidMessage, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from hubbub import __version__

__all__ = ["DEFAULT_PATH", "TransportClosed", "UpgradeFailed", "WebSocket", "normalize_url", "open_websocket"]

DEFAULT_PATH = "/socketcluster/"

#: Sent with the upgrade request, so that server logs tell hubbub's client apart.
USER_AGENT = f"hubbub-client/{__version__} Python/{sys.version_info[0]}.{sys.version_info[1]}"

_STREAM_ERRORS = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class TransportClosed(Exception):
    """The WebSocket is closed; ``code`` and ``reason`` say how (1006 when no close frame was seen)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"WebSocket closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class UpgradeFailed(Exception):
    """The HTTP upgrade did not succeed; ``status`` is the HTTP status when the server sent one."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def normalize_url(url: str) -> str:
    """``url`` with the SocketCluster default path ``/socketcluster/`` when it has none (or ``/``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"expected a ws:// or wss:// URL, got {url!r}")
    if parts.path in ("", "/"):
        parts = parts._replace(path=DEFAULT_PATH)
    return urlunsplit(parts)


class WebSocket:
    """An open WebSocket. One task may call :meth:`receive`; any task may :meth:`send` or close."""

    def __init__(self, stream: anyio.abc.ByteStream, protocol: ClientProtocol) -> None:
        self._stream = stream
        self._protocol = protocol
        self._send_lock = anyio.Lock()
        self._frames: deque[Frame] = deque()
        self._fragments: list[bytes] = []
        self._fragment_text = False
        self._local_close: tuple[int, str] | None = None
        self._closed_event = anyio.Event()
        self._eof = False

    @property
    def is_open(self) -> bool:
        """True until a close frame was sent or received, or the stream broke."""
        return self._protocol.state is State.OPEN

    async def send(self, message: str | bytes) -> None:
        """Send one text (``str``) or binary (``bytes``) message; raise :class:`TransportClosed` if closed."""
        async with self._send_lock:
            if self._protocol.state is not State.OPEN:
                raise self._closed()
            if isinstance(message, str):
                self._protocol.send_text(message.encode("utf-8"))
            else:
                self._protocol.send_binary(message)
            await self._flush_locked()

    async def receive(self) -> str | bytes:
        """The next whole message; raises :class:`TransportClosed` once the connection is closed."""
        while True:
            while self._frames:
                message = self._assemble(self._frames.popleft())
                if message is not None:
                    return message
            if self._protocol.state is State.CLOSED:
                raise self._closed()
            await self._read_more()

    async def close(self, code: int = 1000, reason: str = "", timeout: float = 2.0) -> None:
        """Send a close frame, give the reader ``timeout`` seconds to see the peer's echo, then drop the stream.

        Never reads itself: the task that calls :meth:`receive` completes the close handshake.
        """
        async with self._send_lock:
            if self._protocol.state is State.OPEN:
                self._local_close = (code, reason)
                self._protocol.send_close(code, reason)
                try:
                    await self._flush_locked()
                except TransportClosed:
                    pass
        with anyio.move_on_after(timeout):
            await self._closed_event.wait()
        await self.abort()

    async def abort(self) -> None:
        """Close the underlying stream at once (a reader sees :class:`TransportClosed`)."""
        self._feed_eof()
        with anyio.CancelScope(shield=True):
            await self._stream.aclose()

    async def _read_more(self) -> None:
        try:
            data = await self._stream.receive(65536)
        except _STREAM_ERRORS:
            self._feed_eof()
        else:
            if not self._eof:  # data that raced with abort() is dropped
                self._protocol.receive_data(data)
        for event in self._protocol.events_received():
            if isinstance(event, Frame):
                self._frames.append(event)
        async with self._send_lock:
            try:
                await self._flush_locked()
            except TransportClosed:
                self._feed_eof()
        if self._protocol.state is State.CLOSED:
            self._closed_event.set()

    def _feed_eof(self) -> None:
        self._eof = True
        self._protocol.receive_eof()

    async def _flush_locked(self) -> None:
        for chunk in self._protocol.data_to_send():
            if not chunk:
                continue  # end of stream: the server closes TCP after the close handshake
            try:
                await self._stream.send(chunk)
            except _STREAM_ERRORS:
                raise TransportClosed(1006, "connection lost") from None

    def _assemble(self, frame: Frame) -> str | bytes | None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self._fragments = [bytes(frame.data)]
            self._fragment_text = frame.opcode is Opcode.TEXT
        elif frame.opcode is Opcode.CONT:
            self._fragments.append(bytes(frame.data))
        else:
            return None  # ping, pong, close: handled by the protocol object
        if not frame.fin:
            return None
        data = b"".join(self._fragments)
        self._fragments = []
        return data.decode("utf-8") if self._fragment_text else data

    def _closed(self) -> TransportClosed:
        if self._local_close is not None:
            return TransportClosed(*self._local_close)
        if self._protocol.state is State.CLOSED:
            return TransportClosed(self._protocol.close_code or 1006, self._protocol.close_reason or "")
        return TransportClosed(1006, "connection lost")


async def _connect_stream(url: str, ssl_context: ssl.SSLContext | None) -> anyio.abc.ByteStream:
    uri = parse_uri(url)
    if not uri.secure:
        return await anyio.connect_tcp(uri.host, uri.port)
    context = ssl_context or ssl.create_default_context()
    try:
        return await anyio.connect_tcp(uri.host, uri.port, ssl_context=context, tls_standard_compatible=False)
    except (ssl.SSLError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
        cause = exc if isinstance(exc, ssl.SSLError) or exc.__cause__ is None else exc.__cause__
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail, hint = f"certificate verify failed: {cause.verify_message}", ""
        else:
            detail = getattr(cause, "reason", None) or str(cause) or "the server closed the connection"
            hint = " (does the server serve plain ws://?)"
        raise UpgradeFailed(f"TLS handshake with {uri.host}:{uri.port} failed: {detail}{hint}") from None


async def _upgrade(stream: anyio.abc.ByteStream, protocol: ClientProtocol) -> WebSocket:
    ws = WebSocket(stream, protocol)
    request = protocol.connect()
    request.headers["User-Agent"] = USER_AGENT
    protocol.send_request(request)
    async with ws._send_lock:
        await ws._flush_locked()
    while protocol.state is State.CONNECTING:
        try:
            data = await stream.receive(65536)
        except _STREAM_ERRORS:
            protocol.receive_eof()
            break
        protocol.receive_data(data)
    exc = protocol.handshake_exc
    if isinstance(exc, InvalidMessage) and not protocol.uri.secure:
        exc = InvalidHandshake(f"{exc} (does the server serve TLS? then connect with wss://)")
    if exc is None and protocol.state is not State.OPEN:
        exc = InvalidHandshake("connection closed during the HTTP upgrade")
    if exc is not None:
        raise _upgrade_error(exc)
    for event in protocol.events_received():
        if isinstance(event, Frame):
            ws._frames.append(event)
    return ws


def _upgrade_error(exc: BaseException) -> UpgradeFailed:
    if isinstance(exc, InvalidStatus):
        response = exc.response
        body = response.body.decode("utf-8", "replace").strip() if response.body else ""
        message = (
            f"server refused the WebSocket upgrade: HTTP {response.status_code} {response.reason_phrase}"
        )
        if body:
            message += f": {body}"
        return UpgradeFailed(message, response.status_code, body)
    return UpgradeFailed(f"WebSocket upgrade failed: {exc}")


async def open_websocket(
    url: str, *, max_size: int | None = 2**24, ssl_context: ssl.SSLContext | None = None
) -> WebSocket:
    """Connect to ``url`` (``ws://`` or ``wss://``) and complete the HTTP upgrade.

    Raises :class:`UpgradeFailed` when the server answers with anything but 101, and ``OSError``
    when the TCP connection cannot be made. The caller applies its own timeout.
    """
    protocol = ClientProtocol(parse_uri(url), max_size=max_size)
    stream = await _connect_stream(url, ssl_context)
    try:
        return await _upgrade(stream, protocol)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await stream.aclose()
        raise
