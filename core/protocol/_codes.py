"""WebSocket close codes used by SocketCluster v20 and hubbub, and the client's reconnect policy."""

from __future__ import annotations

import enum

__all__ = ["CloseCode", "ReconnectAction", "reconnect_action"]


class CloseCode(enum.IntEnum):
    """Close codes with their SocketCluster meanings (sc-errors ``socketProtocolErrorStatuses``)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    NO_STATUS = 1005
    ABNORMAL = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013
    SERVER_PING_TIMEOUT = 4000
    CLIENT_PONG_TIMEOUT = 4001
    AUTH_SIGN_FAILED = 4002
    HANDSHAKE_FAILED = 4003
    AUTH_SAVE_FAILED = 4004
    HANDSHAKE_TIMEOUT = 4005
    BROKER_BIND_FAILED = 4006
    CONNECT_TIMEOUT = 4007
    HANDSHAKE_REJECTED = 4008
    MESSAGE_BEFORE_HANDSHAKE = 4009
    #: hubbub: the socket's outbound buffer overflowed (a reader that cannot keep up).
    SLOW_CONSUMER = 4010
    #: hubbub: the worker is shutting down; reconnect (possibly to another worker).
    SERVER_SHUTDOWN = 4011
    #: hubbub: the client sent messages faster than the worker's ``message_rate``/``message_burst``.
    RATE_LIMITED = 4012


class ReconnectAction(enum.Enum):
    """What a SocketCluster client does after a close with a given code."""

    IMMEDIATE = "immediate"  # reconnect at once if this is the first attempt
    BACKOFF = "backoff"  # reconnect after the backoff delay
    STOP = "stop"  # do not reconnect


def reconnect_action(code: int) -> ReconnectAction:
    """The official client's policy: 1000 and codes >= 4500 are final; 4000, 4001, 1005 reconnect at once."""
    if code == CloseCode.NORMAL or code >= 4500:
        return ReconnectAction.STOP
    if code in (CloseCode.SERVER_PING_TIMEOUT, CloseCode.CLIENT_PONG_TIMEOUT, CloseCode.NO_STATUS):
        return ReconnectAction.IMMEDIATE
    return ReconnectAction.BACKOFF
