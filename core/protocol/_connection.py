"""The sans-I/O SocketCluster connection: heartbeats, decoding, call ids and the handshake rules.

No sockets and no clocks: the caller feeds whole WebSocket messages to :meth:`Connection.receive`
and passes the current time (seconds, any monotonic origin) to :class:`Liveness`.

Rules, as socketcluster-server/-client v20 apply them:

* Heartbeats are WebSocket text frames that bypass the codec: protocol v2 uses the empty string for
  both ping (server to client) and pong; protocol v1 uses ``#1`` (ping) and ``#2`` (pong).
* Server, before the handshake completes (strict handshake): the first packet must be a
  ``#handshake`` request with a numeric ``cid``; ``#handshake`` without one closes with 4008,
  anything else (pongs included) closes with 4009.
* Call ids count up from 1 per sender and are never reset (the client keeps its counter across
  reconnects, so it keeps one :class:`CallIds` for its whole life).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final

from ._codec import Codec, CodecError
from ._codes import CloseCode
from ._packets import Invoke, Packet, Raw, read_packets

__all__ = [
    "PING",
    "PONG",
    "CallIds",
    "Connection",
    "Heartbeat",
    "Liveness",
    "ProtocolViolation",
    "Role",
    "State",
]


class Role(enum.Enum):
    """Which end of a connection this is: the rules differ for a client and a server."""

    CLIENT = "client"
    SERVER = "server"


class State(enum.Enum):
    """Where a connection is in its life."""

    CONNECTING = "connecting"  # WebSocket open, handshake not complete
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A ping or a pong frame."""

    is_ping: bool


PING: Final = Heartbeat(is_ping=True)
PONG: Final = Heartbeat(is_ping=False)


class ProtocolViolation(Exception):
    """The peer broke a rule that ends the connection; close with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class CallIds:
    """Monotonic call ids, starting at 1."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        self._last += 1
        return self._last


_HEARTBEATS = {
    2: ("", ""),
    1: ("#1", "#2"),
}


class Connection:
    """One side of a SocketCluster connection, without I/O.

    ``receive(message)`` turns a whole WebSocket message (``str`` for text frames, ``bytes`` for
    binary) into heartbeats and packets, and raises :class:`ProtocolViolation` when the server's
    strict-handshake rule is broken. ``encode(packet)`` gives the message to send.
    """

    __slots__ = ("_ping", "_pong", "codec", "protocol_version", "role", "state")

    def __init__(self, role: Role, codec: Codec, protocol_version: int = 2) -> None:
        if protocol_version not in _HEARTBEATS:
            raise ValueError(f"unsupported protocol version {protocol_version!r}")
        self.role = role
        self.codec = codec
        self.protocol_version = protocol_version
        self.state = State.CONNECTING
        self._ping, self._pong = _HEARTBEATS[protocol_version]

    @property
    def ping_message(self) -> str:
        return self._ping

    @property
    def pong_message(self) -> str:
        return self._pong

    def encode(self, packet: Any) -> str | bytes:
        """Encode a packet (or a list of packets: a batch) with this connection's codec."""
        return self.codec.encode(packet)

    def receive(self, message: str | bytes) -> list[Heartbeat | Packet]:
        """Decode one received WebSocket message."""
        if self.state is State.CLOSED:
            return []
        if isinstance(message, str):
            heartbeat = self._heartbeat(message)
            if heartbeat is not None:
                if self.role is Role.SERVER and self.state is State.CONNECTING:
                    raise ProtocolViolation(CloseCode.MESSAGE_BEFORE_HANDSHAKE, "pong before handshake")
                return [heartbeat]
        try:
            decoded = self.codec.decode(message)
        except CodecError:
            packets: list[Packet] = [Raw(message)]
        else:
            packets = read_packets(decoded)
        if self.role is Role.SERVER and self.state is State.CONNECTING:
            self._check_handshake(packets)
        return list(packets)

    def _heartbeat(self, message: str) -> Heartbeat | None:
        if self.role is Role.SERVER:
            return PONG if message == self._pong else None
        if message == self._ping:
            return PING
        return None

    def _check_handshake(self, packets: list[Packet]) -> None:
        first = packets[0] if packets else None
        if isinstance(first, Invoke) and first.event == "#handshake":
            return
        if getattr(first, "event", None) == "#handshake":
            raise ProtocolViolation(CloseCode.HANDSHAKE_REJECTED, "#handshake without a numeric cid")
        raise ProtocolViolation(CloseCode.MESSAGE_BEFORE_HANDSHAKE, "message before handshake")

    def handshake_complete(self) -> None:
        """Mark the handshake done; from now on any packet is accepted."""
        if self.state is State.CONNECTING:
            self.state = State.OPEN

    def close(self) -> None:
        self.state = State.CLOSED


class Liveness:
    """The server's pong timer: expires ``timeout`` seconds after the peer last sent anything.

    Pongs are what keeps an idle peer alive, but any bytes received show the same: the reader
    resets the timer once per read, not per message.
    """

    __slots__ = ("_last_reset", "timeout")

    def __init__(self, timeout: float, now: float) -> None:
        self.timeout = timeout
        self._last_reset = now

    def on_data(self, now: float) -> None:
        """The peer sent something (a pong or any other data) at ``now``."""
        self._last_reset = now

    def expired(self, now: float) -> bool:
        return now - self._last_reset > self.timeout
