"""Plain HTTP/1.1 exchanges with request bodies, on a raw non-blocking socket (the HTTP server API).

The WebSocket side reads only request heads; this module reads whole requests: a head, then a body
of ``Content-Length`` bytes (at most ``max_body``: larger ones are answered 413 without being read),
answers each with the handler's :class:`Answer` and keeps the connection for the next request
unless the client asked to close it. Every request must arrive whole within ``timeout`` seconds of
the previous answer (or of the connection's start); a connection that stays idle longer is closed.
Chunked request bodies are not read (411).
"""

from __future__ import annotations

import re
import socket as stdsocket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from .._loop import current
from .handshake import recv_into

__all__ = ["Answer", "Exchanges", "PlainRequest", "send_all"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REQUEST_LINE = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP/1\.([01])")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class PlainRequest:
    """One HTTP request with its body; ``headers`` as ``(name, value)`` pairs in the order received."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    keep_alive: bool

    @property
    def path(self) -> str:
        """The target without its query string."""
        return self.target.partition("?")[0]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP response: status, body and its content type (``close`` ends the connection after it)."""

    status: int
    body: bytes
    content_type: str = "application/json"
    close: bool = False
    headers: tuple[tuple[str, str], ...] = ()

    def serialize(self, keep_alive: bool) -> bytes:
        reason = _REASONS.get(self.status, "Unknown")
        lines = [
            f"HTTP/1.1 {self.status} {reason}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            "Connection: keep-alive" if keep_alive and not self.close else "Connection: close",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def _error(status: int, message: str) -> Answer:
    return Answer(status, message.encode(), "text/plain; charset=utf-8", close=True)


Handler = Callable[[PlainRequest], Awaitable[Answer]]


class _Refused(Exception):
    """The request cannot be read: answer with ``answer`` and close (``target``: when known)."""

    def __init__(self, answer: Answer, target: str = "") -> None:
        super().__init__(answer.status)
        self.answer = answer
        self.target = target


@dataclass(frozen=True, slots=True)
class Exchanges:
    """Serves the HTTP exchanges of connections with one handler and one set of limits."""

    handler: Handler
    max_head: int
    max_body: int
    timeout: float
    #: Told of each request refused before the handler saw it: ``(target, status)`` (413, 411...).
    refused: Callable[[str, int], None] | None = None

    async def serve(self, raw: stdsocket.socket, received: bytes = b"") -> None:
        """Answer requests on ``raw`` (``received``: bytes already read from it) until it closes."""
        buffer = bytearray(received)
        view = memoryview(bytearray(65536))
        while True:
            request: PlainRequest | None = None
            with anyio.move_on_after(self.timeout):
                try:
                    request = await self._read(raw, buffer, view)
                except _Refused as refused:
                    if self.refused is not None and refused.target:
                        self.refused(refused.target, refused.answer.status)
                    if await send_all(raw, refused.answer.serialize(False), self.timeout):
                        await _linger(raw, view)
                    return
                if request is None:  # the peer closed
                    return
            if request is None:  # timed out: only a request cut short is told so
                if buffer:
                    await send_all(raw, _error(408, "Request Timeout").serialize(False), 1.0)
                return
            answer = await self.handler(request)
            keep_alive = request.keep_alive and not answer.close
            if not await send_all(raw, answer.serialize(keep_alive), self.timeout) or not keep_alive:
                return

    async def _read(self, raw: stdsocket.socket, buffer: bytearray, view: memoryview) -> PlainRequest | None:
        end = buffer.find(b"\r\n\r\n")
        while end < 0:
            if len(buffer) > self.max_head:
                raise _Refused(_error(431, "Request Header Fields Too Large"))
            if not await _receive(raw, buffer, view):
                return None
            end = buffer.find(b"\r\n\r\n")
        if end > self.max_head:
            raise _Refused(_error(431, "Request Header Fields Too Large"))
        method, target, minor, headers = _parse_head(bytes(buffer[:end]))
        del buffer[: end + 4]
        request = PlainRequest(method, target, headers, b"", False)
        if request.header("Transfer-Encoding") is not None:
            answer = _error(411, "Length Required: send the body with Content-Length (no chunked encoding)")
            raise _Refused(answer, target)
        length = _content_length(request)
        if length > self.max_body:
            answer = _error(413, f"Content Too Large: the body may be at most {self.max_body} bytes")
            raise _Refused(answer, target)
        if length > len(buffer) and (request.header("Expect") or "").lower() == "100-continue":
            await send_all(raw, _CONTINUE, self.timeout)
        while len(buffer) < length:
            if not await _receive(raw, buffer, view):
                return None
        body = bytes(buffer[:length])
        del buffer[:length]
        connection = (request.header("Connection") or "").lower()
        keep_alive = "close" not in connection if minor == "1" else "keep-alive" in connection
        return PlainRequest(method, target, headers, body, keep_alive)


def _parse_head(head: bytes) -> tuple[str, str, str, tuple[tuple[str, str], ...]]:
    """Method, target, HTTP minor version and headers of a request head; raises _Refused (400)."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise _Refused(_error(400, "Bad Request")) from None
    lines = text.split("\r\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise _Refused(_error(400, "Bad Request: malformed request line"))
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or _TOKEN.fullmatch(name) is None:
            raise _Refused(_error(400, "Bad Request: malformed header line"))
        headers.append((name, value.strip(" \t")))
    return match.group(1), match.group(2), match.group(3), tuple(headers)


def _content_length(request: PlainRequest) -> int:
    values = [value for name, value in request.headers if name.lower() == "content-length"]
    if not values:
        return 0
    if len(set(values)) != 1 or not values[0].isdigit() or not values[0].isascii():
        raise _Refused(_error(400, "Bad Request: malformed Content-Length"))
    return int(values[0])


async def _receive(raw: stdsocket.socket, buffer: bytearray, view: memoryview) -> bool:
    """Append what ``raw`` has to ``buffer``, waiting for it; False at EOF."""
    while True:
        received = recv_into(raw, view)
        if received > 0:
            buffer += view[:received]
            return True
        if received == 0:
            return False
        await current().wait_readable(raw)


async def _linger(raw: stdsocket.socket, view: memoryview, timeout: float = 1.0) -> None:
    """Read and drop what the peer still sends, briefly, so that it can read the answer sent early.

    A client still sending a body the answer refused would otherwise get a reset instead of it.
    """
    try:
        raw.shutdown(stdsocket.SHUT_WR)
    except OSError:
        return
    with anyio.move_on_after(timeout):
        while recv_into(raw, view) != 0:
            await current().wait_readable(raw)


async def send_all(raw: stdsocket.socket, data: bytes, timeout: float) -> bool:
    """Write ``data`` to ``raw`` within ``timeout``; False when the peer is gone or too slow."""
    view = memoryview(data)
    with anyio.move_on_after(timeout):
        while view:
            try:
                sent = raw.send(view)
            except BlockingIOError:
                await current().wait_writable(raw)
                continue
            except OSError:
                return False
            view = view[sent:]
        return True
    return False
