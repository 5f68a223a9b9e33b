"""The hubbub server: workers, the app API, middleware and the CLI."""

from hubbub.protocol import SCError as SCError

from ._transport.http import HttpRequest as HttpRequest
from ._transport.listen import bind_listener as bind_listener
from ._transport.state import SocketState as SocketState
from .app import App as App
from .app import Request as Request
from .config import ServerConfig as ServerConfig
from .middleware import Action as Action
from .middleware import ActionType as ActionType
from .middleware import MiddlewareLine as MiddlewareLine
from .server import Server as Server
from .socket import ServerSocket as ServerSocket

__all__ = [
    "Action",
    "ActionType",
    "App",
    "HttpRequest",
    "MiddlewareLine",
    "Request",
    "SCError",
    "Server",
    "ServerConfig",
    "ServerSocket",
    "SocketState",
    "bind_listener",
]
