"""The hubbub server: workers, the app API, middleware and the CLI."""

from hubbub.protocol import SCError as SCError

from ._app import App as App
from ._app import Request as Request
from ._asgi import AsgiEndpoint as AsgiEndpoint
from ._config import ServerConfig as ServerConfig
from ._embed import serve as serve
from ._middleware import Action as Action
from ._middleware import ActionType as ActionType
from ._middleware import MiddlewareLine as MiddlewareLine
from ._server import Server as Server
from ._socket import ServerSocket as ServerSocket
from ._transport.http import HttpRequest as HttpRequest
from ._transport.listen import bind_listener as bind_listener
from ._transport.state import SocketState as SocketState

__all__ = [
    "Action",
    "ActionType",
    "App",
    "AsgiEndpoint",
    "HttpRequest",
    "MiddlewareLine",
    "Request",
    "SCError",
    "Server",
    "ServerConfig",
    "ServerSocket",
    "SocketState",
    "bind_listener",
    "serve",
]
