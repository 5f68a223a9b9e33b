"""The HTTP side of a worker: the upgrade request as middleware sees it, and plain answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

__all__ = ["HttpRequest", "origin_allowed", "plain_response"]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """The HTTP request that opened a connection: URL, headers and the peer's address."""

    url: str
    headers: Headers
    remote_address: tuple[str, int] | None

    @classmethod
    def from_websockets(cls, request: Request, remote: tuple[str, int] | None) -> HttpRequest:
        return cls(request.path, request.headers, remote)

    @property
    def path(self) -> str:
        """The URL path without the query string."""
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, str]:
        """Query parameters (the last value of a repeated key wins)."""
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.url).query).items()}


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
    parts = urlsplit(origin)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    candidates = {f"{host}:{port}", f"{host}:*", f"*:{port}"}
    return any(pattern in candidates for pattern in allowed)
