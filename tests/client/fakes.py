"""In-process stand-ins for a connection, for unit tests of the client's parts (no WebSocket)."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel


class RecordingSession:
    """A session that records the packets sent on it (never backlogged)."""

    def __init__(self) -> None:
        self.packets: list[Any] = []

    def send(self, packet: Any) -> None:
        self.packets.append(packet)

    async def wait_backlog_below(self, limit: int) -> None:
        await anyio.lowlevel.checkpoint()


class Link:
    """A ``SessionLink`` whose session the test opens and drops."""

    def __init__(self) -> None:
        self.session: RecordingSession | None = None
        self._opened = anyio.Event()

    def open(self) -> RecordingSession:
        self.session = RecordingSession()
        self._opened.set()
        return self.session

    def drop(self) -> None:
        self.session = None
        self._opened = anyio.Event()

    async def wait_session(self) -> RecordingSession:
        await self._opened.wait()
        assert self.session is not None
        return self.session
