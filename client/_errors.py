"""Exceptions raised by :mod:`hubbub.client`.

::

    Exception
    ├── ClientError                    local failures (the SDK's own root)
    │   ├── ConnectError               no connection: refused, HTTP status, connect timeout (4007)
    │   │   └── HandshakeError         the server rejected the SocketCluster #handshake
    │   ├── ConnectionClosedError      the connection closed under a call, or the client is closed
    │   ├── NotConnectedError          no open connection came within the time allowed
    │   ├── AckTimeoutError            (also a TimeoutError) no response within the ack timeout
    │   ├── KickedOutError             the server kicked this client out of a channel
    │   └── ChannelOverflowError       a channel's buffer overflowed under ``Overflow.ERROR``
    └── SCError (hubbub.protocol)
        └── RemoteError                the server answered a request with an error (also a ClientError)

:class:`RemoteError` keeps the SocketCluster error's ``name``, ``message`` and extra ``fields``.
"""

from __future__ import annotations

from typing import Any

from hubbub.protocol import SCError

__all__ = [
    "AckTimeoutError",
    "ChannelOverflowError",
    "ClientError",
    "ConnectError",
    "ConnectionClosedError",
    "HandshakeError",
    "KickedOutError",
    "NotConnectedError",
    "RemoteError",
]


class ClientError(Exception):
    """Root of the client's exceptions."""


class ConnectError(ClientError):
    """A connection could not be established.

    ``code`` is the close code the client uses for it (4007 for a connect timeout, 1006 for a refused
    or broken TCP connection), ``status`` the HTTP status when the server refused the upgrade.
    """

    def __init__(self, message: str, *, code: int = 1006, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class HandshakeError(ConnectError):
    """The server answered ``#handshake`` with an error; ``error`` carries its name, message and fields."""

    def __init__(self, error: SCError, *, code: int) -> None:
        super().__init__(f"server rejected the handshake (close code {code}): {error}", code=code)
        self.error = error


class ConnectionClosedError(ClientError):
    """The connection closed before the call completed, or the client is closed for good."""

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class NotConnectedError(ClientError):
    """No open connection became available within the time allowed."""


class AckTimeoutError(ClientError, TimeoutError):
    """No response arrived within the ack timeout (``Event response for <event> event timed out``)."""


class KickedOutError(ClientError):
    """The server kicked the client out of ``channel`` (``#kickOut``), with the server's ``message``."""

    def __init__(self, channel: str, message: Any) -> None:
        super().__init__(f"kicked out of channel {channel!r}: {message}")
        self.channel = channel
        self.message = message


class ChannelOverflowError(ClientError):
    """A channel's buffer was full under the ``Overflow.ERROR`` policy; the subscription ended."""


class RemoteError(SCError, ClientError):
    """The server answered with an error: ``name``, ``message`` and ``fields`` as the server sent them."""

    @classmethod
    def from_sc(cls, error: SCError) -> RemoteError:
        """Wrap a hydrated :class:`SCError`."""
        return cls(error.message, error.name, **error.fields)
