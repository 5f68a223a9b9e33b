"""The HTTP phase of a connection: read the request, answer it, and on an upgrade hand over the rest."""

from __future__ import annotations

import logging
import socket as stdsocket
from collections.abc import Awaitable, Callable

from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

from .._loop import current
from .http import HttpRequest, plain_response, switching_protocols
from .upgrade import KnownUpgrade, KnownUpgrades

__all__ = ["Answer", "PlainHttp", "recv_into", "upgrade"]

ws_log = logging.getLogger("hubbub.websockets")

_HEAD_TOO_LARGE = plain_response(
    431, "Request Header Fields Too Large", b"Request Header Fields Too Large", "text/plain"
).serialize()
_BAD_REQUEST = plain_response(400, "Bad Request", b"Bad Request", "text/plain").serialize()

#: Decides a request's fate: the HTTP response for one that must not become a WebSocket, else None.
Answer = Callable[[HttpRequest], Awaitable[Response | None]]


class PlainHttp:
    """A request that is served as plain HTTP, with a body (see :mod:`.exchange`): the bytes read so far."""

    __slots__ = ("received",)

    def __init__(self, received: bytes) -> None:
        self.received = received


def recv_into(sock: stdsocket.socket, view: memoryview) -> int:
    """Bytes read into ``view``: 0 at EOF (or a dead connection), -1 when there is nothing yet."""
    try:
        return sock.recv_into(view)
    except BlockingIOError:
        return -1
    except OSError:
        return 0


async def upgrade(
    raw: stdsocket.socket,
    remote: tuple[str, int] | None,
    view: memoryview,
    known: KnownUpgrades,
    limits: tuple[int, int],
    answer: Answer,
    plain: Callable[[bytes], bool] | None = None,
) -> tuple[HttpRequest, bytes] | PlainHttp | None:
    """Read the HTTP request and answer it; on a WebSocket upgrade, the request and any bytes after it.

    ``limits`` are the largest request head (431 beyond it) and the largest WebSocket message.
    A request whose head ``plain`` accepts is not read further: :class:`PlainHttp` hands it over.
    """
    max_request_head, max_payload = limits
    handshake: ServerProtocol | None = None
    head = bytearray()
    while True:
        received = recv_into(raw, view)
        if received < 0:
            await current().wait_readable(raw)
            continue
        if not received:
            return None
        data = view[:received].tobytes()
        head += data
        if handshake is None:
            end = head.find(b"\r\n\r\n")
            if (end if end >= 0 else len(head)) > max_request_head:
                _write_all(raw, [_HEAD_TOO_LARGE])
                return None
            if end >= 0 and plain is not None and plain(bytes(head[:end])):
                return PlainHttp(bytes(head))
            seen = known.find(bytes(head[: end + 4])) if end >= 0 else None
            if seen is not None:
                return await _upgrade_known(raw, remote, answer, *seen, bytes(head[end + 4 :]))
            handshake = ServerProtocol(max_size=max_payload, logger=ws_log)
            data = bytes(head)
        handshake.receive_data(data)
        requests = [e for e in handshake.events_received() if isinstance(e, Request)]
        if requests:
            break
        if handshake.handshake_exc is not None:  # malformed request: websockets prepared a 400
            _write_all(raw, handshake.data_to_send())
            return None
    if len(requests) > 1 or handshake.eof_sent:
        # A second request pipelined behind the first (or other bytes that are neither a request
        # nor frames): websockets already gave up on the connection.
        _write_all(raw, [_BAD_REQUEST])
        return None
    request = requests[0]
    http_request = HttpRequest.from_websockets(request, remote)
    refusal = await answer(http_request)
    accepted = switching_protocols(handshake, request) if refusal is None else None
    if accepted is None:
        handshake.send_response(refusal or handshake.accept(request))  # websockets' error response
        _write_all(raw, handshake.data_to_send())
        return None
    _write_all(raw, [accepted])
    end = head.find(b"\r\n\r\n")  # websockets read the request, so its blank line is there
    known.add(bytes(head[: end + 4]), http_request, accepted)
    return http_request, bytes(head[end + 4 :])


async def _upgrade_known(
    raw: stdsocket.socket,
    remote: tuple[str, int] | None,
    answer: Answer,
    known: KnownUpgrade,
    key: str,
    rest: bytes,
) -> tuple[HttpRequest, bytes] | None:
    """:func:`upgrade` for a request websockets accepted before, but for its key."""
    http_request = known.request(remote)
    refusal = await answer(http_request)
    if refusal is not None:
        _write_all(raw, [refusal.serialize()])
        return None
    _write_all(raw, [known.response(key)])
    return http_request, rest


def _write_all(raw: stdsocket.socket, chunks: list[bytes]) -> None:
    """Best-effort write of a short HTTP answer (the connection closes right after)."""
    for chunk in chunks:
        if chunk:
            try:
                raw.send(chunk)
            except OSError:
                return
