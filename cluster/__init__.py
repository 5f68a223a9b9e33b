"""The hubbub server: workers, the app API, middleware and the CLI."""

from hubbub.protocol import SCError as SCError

from .app import App as App
from .app import Request as Request
from .config import ServerConfig as ServerConfig
from .middleware import Action as Action
from .middleware import ActionType as ActionType
from .middleware import MiddlewareLine as MiddlewareLine
from .server import Server as Server
from .socket import ServerSocket as ServerSocket
