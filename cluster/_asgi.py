"""hubbub's protocol on a path of an ASGI application: :class:`AsgiEndpoint`.

The endpoint is an ASGI app for ``websocket`` connections. Mounted in FastAPI or Starlette
(``api.mount("/socketcluster", endpoint)``), it serves SocketCluster clients on the web app's own
port, through the ASGI server (uvicorn, hypercorn), with the same sessions, hub and broker as a
worker on its own listener. Its worker runs while :meth:`AsgiEndpoint.running` is entered (in the
web app's lifespan), on the web app's loop; as the top-level ASGI app it runs its own lifespan.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import AsyncIterator

from websockets.http11 import Response

from hubbub.broker import Broker
from hubbub.protocol import CloseCode

from ._app import App
from ._config import ServerConfig
from ._connection_log import asgi_link_class
from ._embed import embedded
from ._server import Server
from ._transport.asgi import Receive, Scope, Send
from ._transport.http import HttpRequest

__all__ = ["AsgiEndpoint"]

_NOT_A_PAGE = (
    b"This is a WebSocket endpoint (SocketCluster protocol), not a web page: connect a WebSocket "
    b"client to this path.\n"
)


class AsgiEndpoint:
    """An ASGI app that serves :class:`App`'s clients on a path of a web app, on its port and loop.

    ``broker``, ``broker_prefix``, ``config`` and ``drain_timeout`` are those of
    :func:`hubbub.cluster.serve` (``config``'s host, port and path do not apply: the ASGI server
    listens, and the mount decides the path). HTTP requests get 426, except ``/health``,
    ``/ready`` and ``/metrics`` under the mount path, which are answered as on a worker's main
    port (``/health`` and ``/ready`` bare, details and metrics only with ``public_metrics``).
    Websocket connections while the worker is not running are closed with 1011.
    """

    def __init__(
        self,
        app: App,
        *,
        broker: str | Broker = "memory://",
        broker_prefix: str = "hubbub:",
        config: ServerConfig | None = None,
        drain_timeout: float | None = None,
    ) -> None:
        self.app = app
        self._broker = broker
        self._prefix = broker_prefix
        self._config = config or ServerConfig()
        self._drain_timeout = drain_timeout
        self._server: Server | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[AsgiEndpoint]:
        """Run the endpoint's worker on the running loop while the block runs (a web app's lifespan).

        Leaving the block drains it: every socket is closed with 4011 and waited for.
        """
        if self._server is not None:
            raise RuntimeError("this AsgiEndpoint is already running")
        config = dataclasses.replace(self._config, port=0)
        async with embedded(
            self.app, config, self._broker, self._prefix, self._drain_timeout, listen=False
        ) as (
            server,
            _,
        ):
            self._server = server
            try:
                yield self
            finally:
                self._server = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "http":
            await self._http(scope, send)

    async def _http(self, scope: Scope, send: Send) -> None:
        """A status path's answer (while the worker runs), else 426: this path is for WebSockets."""
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):  # Starlette's Mount keeps the whole path in "path"
            path = path[len(root) :]
        server = self._server
        status = server.status_response(path, public=True) if server is not None else None
        if status is not None:
            await _send_response(send, "http.response", status)
            return
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"upgrade", b"websocket")]
        await send({"type": "http.response.start", "status": 426, "headers": headers})
        await send({"type": "http.response.body", "body": _NOT_A_PAGE})

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        server = self._server
        if server is None:
            reason = "hubbub is not running: enter AsgiEndpoint.running() in the app's lifespan"
            await send({"type": "websocket.close", "code": CloseCode.INTERNAL_ERROR, "reason": reason})
            return
        server.stats.connections_total += 1
        http_request = HttpRequest.from_asgi(scope)
        refused = await server.refusal(http_request)
        if refused is not None:
            if "websocket.http.response" in scope.get("extensions", {}):
                await _send_response(send, "websocket.http.response", refused)
            else:
                await send({"type": "websocket.close", "code": CloseCode.POLICY_VIOLATION})
            return
        await send({"type": "websocket.accept"})
        link = asgi_link_class()(send, server.links)
        session = server.start_session(link, http_request)
        await link.run(receive, functools.partial(server.forget, link, session))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """The ASGI lifespan protocol, for an endpoint that is the server's top-level app."""
        async with contextlib.AsyncExitStack() as stack:
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    try:
                        await stack.enter_async_context(self.running())
                    except Exception as error:
                        await send({"type": "lifespan.startup.failed", "message": str(error)})
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await stack.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return


async def _send_response(send: Send, kind: str, response: Response) -> None:
    """Send ``response`` as ASGI ``{kind}.start`` and ``{kind}.body`` events."""
    headers = [(name.lower().encode(), value.encode()) for name, value in response.headers.raw_items()]
    await send({"type": f"{kind}.start", "status": response.status_code, "headers": headers})
    await send({"type": f"{kind}.body", "body": response.body})
