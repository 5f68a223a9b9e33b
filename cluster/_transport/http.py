"""The HTTP side of a worker: the upgrade request as middleware sees it, and plain answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import InvalidHandshake
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

__all__ = ["HttpRequest", "not_the_websocket_path", "origin_allowed", "plain_response", "switching_protocols"]


#: Headers that only serve the WebSocket upgrade; they are not kept for the life of a socket.
_UPGRADE_HEADERS = frozenset(
    {"connection", "upgrade", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions"}
)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """The HTTP request that opened a connection: URL, headers and the peer's address.

    ``headers`` keeps every request header but the upgrade mechanics (``Upgrade``,
    ``Connection``, ``Sec-WebSocket-Key/-Version/-Extensions``) as ``(name, value)`` pairs in the
    order received; :meth:`header` looks one up case-insensitively.
    """

    url: str
    headers: tuple[tuple[str, str], ...]
    remote_address: tuple[str, int] | None

    @classmethod
    def from_websockets(cls, request: Request, remote: tuple[str, int] | None) -> HttpRequest:
        kept = tuple(
            (name, value)
            for name, value in request.headers.raw_items()
            if name.lower() not in _UPGRADE_HEADERS
        )
        return cls(request.path, kept, remote)

    @classmethod
    def from_asgi(cls, scope: Mapping[str, Any]) -> HttpRequest:
        """The request of an ASGI ``websocket`` scope: the URL the client asked for, headers, peer."""
        raw_path, path, root = scope.get("raw_path"), scope["path"], scope.get("root_path", "")
        # Starlette's Mount keeps the whole path in "path"; other servers may leave the root out.
        whole = path if path.startswith(root) else root + path
        url = raw_path.decode("latin-1") if raw_path else whole
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        kept = tuple(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in scope.get("headers", ())
            if name.decode("latin-1").lower() not in _UPGRADE_HEADERS
        )
        client = scope.get("client")
        return cls(url, kept, (str(client[0]), int(client[1])) if client else None)

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (any case), or ``default``."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return default

    @property
    def path(self) -> str:
        """The URL path without the query string."""
        url = self.url
        if url.startswith("/"):  # origin-form, what clients send: no scheme, no fragment
            return url.partition("?")[0]
        return urlsplit(url).path

    @property
    def query(self) -> dict[str, str]:
        """Query parameters (the last value of a repeated key wins)."""
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.url).query).items()}


_SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"


def switching_protocols(handshake: ServerProtocol, request: Request) -> bytes | None:
    """The ``101`` answer to a valid upgrade request, as bytes; None when websockets refuses it.

    websockets checks the request and negotiates (``process_request``); the answer holds only
    what the protocol needs, like socketcluster-server's (no ``Date`` or ``Server`` header). For
    a refused request, ``handshake.accept(request)`` gives the error response to send.
    """
    try:
        accept, extensions, subprotocol = handshake.process_request(request)
    except InvalidHandshake:
        return None
    lines = [_SWITCHING, b"Sec-WebSocket-Accept: ", accept.encode(), b"\r\n"]
    if extensions is not None:
        lines += [b"Sec-WebSocket-Extensions: ", extensions.encode(), b"\r\n"]
    if subprotocol is not None:
        lines += [b"Sec-WebSocket-Protocol: ", subprotocol.encode(), b"\r\n"]
    lines.append(b"\r\n")
    return b"".join(lines)


def plain_response(status: int, reason: str, body: bytes, content_type: str) -> Response:
    """A complete HTTP response that closes the connection."""
    headers = Headers(
        [
            ("Connection", "close"),
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
        ]
    )
    return Response(status, reason, headers, body)


def json_response(status: int, reason: str, payload: Any) -> Response:
    return plain_response(status, reason, json.dumps(payload).encode(), "application/json")


def origin_allowed(origin: str | None, allowed: tuple[str, ...]) -> bool:
    """SocketCluster's origin check: ``host:port`` of ``Origin`` against patterns with ``*``."""
    if "*:*" in allowed or origin is None:
        return True
    try:
        parts = urlsplit(origin)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    except ValueError:  # not a URL (a port out of range, an unclosed bracket...): not allowed
        return False
    candidates = {f"{host}:{port}", f"{host}:*", f"*:{port}"}
    return any(pattern in candidates for pattern in allowed)


def not_the_websocket_path(ws_path: str, tls: bool) -> Response:
    """HTTP 400 for a request to another path than the WebSocket one, saying what this is and where to go."""
    scheme = "wss" if tls else "ws"
    body = (
        "This is a WebSocket server (SocketCluster protocol), not a web page. "
        f"WebSocket clients connect to {scheme}://<this host>{ws_path}\n"
    ).encode()
    return plain_response(400, "Bad Request", body, "text/plain; charset=utf-8")
