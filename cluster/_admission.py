"""Whether a WebSocket upgrade to the worker's path is let in: origin, capacity, handshake middleware."""

from __future__ import annotations

from websockets.http11 import Response

from hubbub.protocol import SCError

from ._app import App
from ._middleware import Action, ActionType, MiddlewareLine, run_middleware
from ._transport.http import HttpRequest, origin_allowed, plain_response

__all__ = ["upgrade_refusal"]


async def upgrade_refusal(
    http_request: HttpRequest, origins: tuple[str, ...], full: bool, app: App
) -> Response | None:
    """The HTTP answer refusing ``http_request`` (403 origin, 503 ``full``, 401 middleware), or None.

    The answers are socketcluster-server's, whichever transport carries the connection.
    """
    origin = http_request.header("Origin")
    if not origin_allowed(origin, origins):
        body = f"Failed to authorize socket handshake - Invalid origin: {origin}".encode()
        return plain_response(403, "Forbidden", body, "text/html")
    if full:
        return plain_response(503, "Service Unavailable", b"Server is at capacity", "text/plain")
    chain = app.middleware_chains[MiddlewareLine.HANDSHAKE]
    if chain:
        action = Action(ActionType.HANDSHAKE_WS, request=http_request)
        blocked = await run_middleware(chain, action)
        if blocked is not None:
            message = blocked.message if isinstance(blocked, SCError) else str(blocked)
            return plain_response(401, "Unauthorized", message.encode(), "text/html")
    return None
