"""The worker's one timer task: pings, and the handshake, pong and close deadlines of every connection.

It also knows which connections are connecting, open or closing, which is what the deadlines
depend on, so the worker asks it how many there are and waits on it for them to end.
"""

from __future__ import annotations

import math
import socket as stdsocket
from collections.abc import Callable
from typing import Protocol

import anyio

from hubbub.protocol import CloseCode

from .._loop import TRIO, Loop

__all__ = ["Timed", "Timers"]


class Timed(Protocol):
    """What the timers need of a connection."""

    opened_at: float
    close_deadline: float

    def ping_expired(self, now: float) -> bool:
        """True when the peer has sent nothing for longer than the ping timeout."""
        ...

    def send_frame(self, frame: bytes) -> None: ...

    def disconnect(self, code: int = CloseCode.NORMAL, reason: str = "") -> None: ...

    def abort(self) -> None: ...


class Timers:
    """Pings each open connection once per ``ping_interval`` and enforces the deadlines.

    The tick is a fraction of the shortest timeout and divides the ping interval; each tick pings
    one slot of the open connections, so each is pinged at the same phase every interval and the
    pongs of many connections never come at once.
    """

    def __init__(
        self,
        ping_interval: float,
        handshake_timeout: float,
        close_timeout: float,
        ping: bytes,
        loop: Loop = TRIO,
    ) -> None:
        self._loop = loop
        base_tick = max(0.02, min(1.0, ping_interval, handshake_timeout, close_timeout) / 4)
        self._slots: list[set[Timed]] = [set() for _ in range(max(1, math.ceil(ping_interval / base_tick)))]
        self._interval = ping_interval
        self._handshake_timeout = handshake_timeout
        self._ping = ping
        #: Connections in their HTTP phase, with the time their handshake timeout expires.
        self._upgrading: dict[stdsocket.socket, float] = {}
        self._connecting: set[Timed] = set()
        self._closing: set[Timed] = set()
        self._open = 0
        #: Also called at every tick with the time (the flow control's check).
        self.on_tick: Callable[[float], None] | None = None
        self._all_closed: anyio.Event | None = None

    @property
    def open_count(self) -> int:
        """Connections past the SocketCluster handshake (closing ones too) that have not ended."""
        return self._open

    @property
    def live_count(self) -> int:
        """Connections connecting or open (closing ones too) that have not ended."""
        return self._open + len(self._connecting)

    def live(self) -> list[Timed]:
        """The connecting and open connections."""
        return [*self._connecting, *(conn for slot in self._slots for conn in slot)]

    def upgrading(self, raw: stdsocket.socket) -> None:
        """``raw`` is in its HTTP phase: wake its read with ClosedResourceError at the handshake timeout."""
        self._upgrading[raw] = self._loop.current_time() + self._handshake_timeout

    def upgraded(self, raw: stdsocket.socket) -> bool:
        """The HTTP phase of ``raw`` ended; False if it had timed out meanwhile."""
        return self._upgrading.pop(raw, None) is not None

    def connecting(self, conn: Timed) -> None:
        """``conn`` waits for its SocketCluster handshake (bounded by the handshake timeout)."""
        self._connecting.add(conn)

    def opened(self, conn: Timed) -> None:
        """``conn`` completed its handshake: ping it from now on."""
        if conn in self._connecting:
            self._connecting.discard(conn)
            self._slot(conn).add(conn)
            self._open += 1

    def closing(self, conn: Timed) -> None:
        """``conn`` started closing: drop it at its ``close_deadline`` if still there.

        It still counts as what it was (connecting or open) until :meth:`forget`.
        """
        self._closing.add(conn)

    def forget(self, conn: Timed) -> bool:
        """``conn`` ended; True if it was open (had completed its handshake)."""
        was_open = self._unwatch(conn)
        self._closing.discard(conn)
        if not (self._open or self._connecting or self._closing) and self._all_closed is not None:
            self._all_closed.set()
        return was_open

    async def wait_all_closed(self) -> None:
        """Return when no connection is connecting, open or closing."""
        while self._open or self._connecting or self._closing:
            self._all_closed = anyio.Event()
            await self._all_closed.wait()

    def _unwatch(self, conn: Timed) -> bool:
        self._connecting.discard(conn)
        slot = self._slot(conn)
        if conn not in slot:
            return False
        slot.discard(conn)
        self._open -= 1
        return True

    def _slot(self, conn: Timed) -> set[Timed]:
        return self._slots[(hash(conn) >> 4) % len(self._slots)]

    async def run(self) -> None:
        """Tick until cancelled."""
        slots = self._slots
        tick = self._interval / len(slots)
        slot = 0
        next_tick = self._loop.current_time() + tick
        while True:
            await self._loop.sleep_until(next_tick)
            next_tick += tick
            self.tick(slots[slot], self._loop.current_time())
            slot = (slot + 1) % len(slots)

    def tick(self, slot: set[Timed], now: float) -> None:
        """Ping ``slot`` (or close its silent connections) and enforce every deadline passed at ``now``."""
        for conn in list(slot):
            if conn.ping_expired(now):
                conn.disconnect(CloseCode.CLIENT_PONG_TIMEOUT)
            else:
                conn.send_frame(self._ping)
        for raw, deadline in list(self._upgrading.items()):
            if now > deadline:
                del self._upgrading[raw]
                self._loop.notify_closing(raw)
        for conn in list(self._connecting):
            if now - conn.opened_at > self._handshake_timeout:
                conn.disconnect(CloseCode.HANDSHAKE_TIMEOUT)
        for conn in list(self._closing):
            if now > conn.close_deadline:
                conn.abort()
        if self.on_tick is not None:
            self.on_tick(now)
