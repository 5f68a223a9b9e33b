"""The life cycle of one client connection, as the worker and the app see it."""

from __future__ import annotations

import enum

__all__ = ["SocketState"]


class SocketState(enum.StrEnum):
    """Where a connection is in its life.

    ``CONNECTING`` until the SocketCluster handshake completes, then ``OPEN``. ``CLOSING`` once a
    close was started (a close frame is on its way and the close timeout runs), ``CLOSED`` when
    the connection is gone or was dropped without a close handshake. Only ``CONNECTING`` and
    ``OPEN`` connections send. The members are strings (``socket.state == "open"`` holds).
    """

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"
