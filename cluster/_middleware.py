"""SocketCluster's middleware lines: handshake, inbound raw, inbound and outbound.

A middleware is an ``async def`` taking an :class:`Action`. It allows the action by returning
(optionally after ``action.allow(data=...)`` to replace the payload) or blocks it with
``action.block(error)``. ``action.block()`` with no error blocks silently: the client gets the
``SilentMiddlewareBlockedError`` the official server sends. A middleware that raises blocks the
action too (see :func:`run_middleware`). An outbound middleware that changes what a socket is sent
replaces ``action.data`` (``action.allow(data=...)``) rather than changing it in place: data left as
it is (the same object) is sent in the one frame shared by every subscriber.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hubbub.protocol import SCError, SilentMiddlewareBlockedError

from ._app_errors import for_client

if TYPE_CHECKING:
    from ._socket import ServerSocket
    from ._transport.http import HttpRequest

__all__ = ["Action", "ActionType", "Middleware", "MiddlewareLine"]


class MiddlewareLine(enum.Enum):
    """Where a middleware runs; the values are SocketCluster's middleware type names."""

    HANDSHAKE = "handshake"
    INBOUND_RAW = "inboundRaw"
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class ActionType(enum.Enum):
    """What an action is about; the values are SocketCluster's action type names."""

    HANDSHAKE_WS = "handshakeWS"
    HANDSHAKE_SC = "handshakeSC"
    MESSAGE = "message"
    TRANSMIT = "transmit"
    INVOKE = "invoke"
    SUBSCRIBE = "subscribe"
    PUBLISH_IN = "publishIn"
    AUTHENTICATE = "authenticate"
    PUBLISH_OUT = "publishOut"


_UNCHANGED: Any = object()


@dataclass(eq=False, slots=True)
class Action:
    """One thing a client (or the server, for ``publishOut``) is about to do.

    Fields not relevant to the action's type are None: ``channel`` for subscribe/publish,
    ``procedure`` for invoke, ``receiver`` for transmit, ``signed_auth_token``/``auth_token``
    for authenticate and handshakeSC, ``request`` for the handshake line.
    """

    type: ActionType
    socket: ServerSocket | None = None
    request: HttpRequest | None = None
    data: Any = None
    channel: str | None = None
    procedure: str | None = None
    receiver: str | None = None
    signed_auth_token: str | None = None
    auth_token: dict[str, Any] | None = None
    auth_token_expired_error: SCError | None = None
    blocked: BaseException | None = field(default=None, init=False)

    def allow(self, data: Any = _UNCHANGED) -> None:
        """Let the action through, optionally replacing its payload."""
        if data is not _UNCHANGED:
            self.data = data

    def block(self, error: BaseException | None = None) -> None:
        """Stop the action. Without an error (or with one whose ``silent`` is true) it is silent."""
        if error is None or getattr(error, "silent", False):
            self.blocked = SilentMiddlewareBlockedError(
                f"The {self.type.value} AGAction was blocked by {self._line().value} middleware",
                type=self._line().value,
            )
        else:
            self.blocked = error

    def _line(self) -> MiddlewareLine:
        return _LINE_OF[self.type]


_LINE_OF = {
    ActionType.HANDSHAKE_WS: MiddlewareLine.HANDSHAKE,
    ActionType.HANDSHAKE_SC: MiddlewareLine.HANDSHAKE,
    ActionType.MESSAGE: MiddlewareLine.INBOUND_RAW,
    ActionType.PUBLISH_OUT: MiddlewareLine.OUTBOUND,
}
for _type in (
    ActionType.TRANSMIT,
    ActionType.INVOKE,
    ActionType.SUBSCRIBE,
    ActionType.PUBLISH_IN,
    ActionType.AUTHENTICATE,
):
    _LINE_OF[_type] = MiddlewareLine.INBOUND

Middleware = Callable[[Action], Awaitable[None]]


async def run_middleware(chain: list[Middleware], action: Action) -> BaseException | None:
    """Run ``chain`` in order until one blocks; return the blocking error or None.

    A middleware that raises blocks the action: with its error if that is an SCError or a plain
    ``Exception``, else with a generic error (the details go to the log; see :mod:`._app_errors`).
    """
    for middleware in chain:
        try:
            await middleware(action)
        except Exception as error:
            where = f"{action._line().value} middleware {getattr(middleware, '__qualname__', middleware)!r}"
            action.block(for_client(error, where))
        if action.blocked is not None:
            return action.blocked
    return None
