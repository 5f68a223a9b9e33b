"""The Python SDK for hubbub and SocketCluster v20 servers, on anyio (runs under trio and asyncio).

::

    async with hubbub.client.connect("ws://localhost:8000/socketcluster/") as client:
        async with client.subscribe("room") as channel:
            async for message in channel:
                print(message)

See ``docs/client.md`` for the full guide; :func:`connect_blocking` is the blocking facade.
"""

from hubbub.protocol import SCError as SCError

from ._auth import AuthState as AuthState
from ._auth import FileTokenStore as FileTokenStore
from ._auth import MemoryTokenStore as MemoryTokenStore
from ._auth import TokenStore as TokenStore
from ._backoff import ReconnectOptions as ReconnectOptions
from ._blocking import BlockingChannel as BlockingChannel
from ._blocking import BlockingClient as BlockingClient
from ._blocking import connect_blocking as connect_blocking
from ._buffer import Overflow as Overflow
from ._channel import Channel as Channel
from ._channel import ChannelState as ChannelState
from ._client import Client as Client
from ._client import ClientStatistics as ClientStatistics
from ._connect import connect as connect
from ._errors import AckTimeoutError as AckTimeoutError
from ._errors import ChannelOverflowError as ChannelOverflowError
from ._errors import ClientError as ClientError
from ._errors import ConnectError as ConnectError
from ._errors import ConnectionClosedError as ConnectionClosedError
from ._errors import HandshakeError as HandshakeError
from ._errors import KickedOutError as KickedOutError
from ._errors import NotConnectedError as NotConnectedError
from ._errors import RemoteError as RemoteError
from ._events import AuthStateChanged as AuthStateChanged
from ._events import ClientEvent as ClientEvent
from ._events import Connected as Connected
from ._events import ConnectFailed as ConnectFailed
from ._events import Disconnected as Disconnected
from ._events import KickedOut as KickedOut
from ._events import Reconnecting as Reconnecting
from ._events import Resubscribed as Resubscribed
from ._events import TokenChanged as TokenChanged
from ._handlers import Handler as Handler
from ._lifecycle import ClientState as ClientState
from ._options import ClientOptions as ClientOptions
from ._recovery import Publication as Publication
from ._recovery import StreamPosition as StreamPosition

__all__ = [
    "AckTimeoutError",
    "AuthState",
    "AuthStateChanged",
    "BlockingChannel",
    "BlockingClient",
    "Channel",
    "ChannelOverflowError",
    "ChannelState",
    "Client",
    "ClientError",
    "ClientEvent",
    "ClientOptions",
    "ClientState",
    "ClientStatistics",
    "ConnectError",
    "ConnectFailed",
    "Connected",
    "ConnectionClosedError",
    "Disconnected",
    "FileTokenStore",
    "Handler",
    "HandshakeError",
    "KickedOut",
    "KickedOutError",
    "MemoryTokenStore",
    "NotConnectedError",
    "Overflow",
    "Publication",
    "ReconnectOptions",
    "Reconnecting",
    "RemoteError",
    "Resubscribed",
    "SCError",
    "StreamPosition",
    "TokenChanged",
    "TokenStore",
    "connect",
    "connect_blocking",
]
