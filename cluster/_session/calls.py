"""Server-to-client invokes waiting for the client's response, by call id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from hubbub.protocol import CallIds, SCError, hydrate_error, server_invoke_packet
from hubbub.protocol import Response as ResponsePacket

from .._loop import Loop

__all__ = ["Call", "Calls"]


class Call:
    """A server-to-client invoke waiting for its response."""

    __slots__ = ("data", "done", "error")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.data: Any = None
        self.error: SCError | None = None


class Calls:
    """The invokes one socket is waiting on (no table until the first one)."""

    __slots__ = ("_cids", "_waiting")

    def __init__(self) -> None:
        self._cids = CallIds()
        self._waiting: dict[int, Call] | None = None

    async def invoke(
        self, send: Callable[[Any], None], event: str, data: Any, timeout: float, loop: Loop
    ) -> Any:
        """Send an invoke of ``event`` with ``send`` and return the client's answer.

        Raises :class:`TimeoutError` after ``timeout``, or the client's error as :class:`SCError`.
        """
        cid, call = self.start()
        try:
            send(server_invoke_packet(event, data, cid))
            with loop.move_on_after(timeout):
                await call.done.wait()
        finally:
            self.forget(cid)
        if not call.done.is_set():
            raise TimeoutError(f"Event response for {event} event timed out")
        if call.error is not None:
            raise call.error
        return call.data

    def start(self) -> tuple[int, Call]:
        """A new call id and the call that its response completes."""
        cid = self._cids.next()
        if self._waiting is None:
            self._waiting = {}
        call = self._waiting[cid] = Call()
        return cid, call

    def forget(self, cid: int) -> None:
        if self._waiting is not None:
            self._waiting.pop(cid, None)

    def resolve(self, packet: ResponsePacket) -> None:
        """Complete the call ``packet`` answers (responses to unknown ids are ignored)."""
        waiting = self._waiting
        call = waiting.pop(packet.rid, None) if waiting and isinstance(packet.rid, int) else None
        if call is None:
            return
        call.error = hydrate_error(packet.error)
        call.data = packet.data
        call.done.set()

    def fail_all(self) -> None:
        """The connection closed: every waiting call fails with BadConnectionError."""
        for call in (self._waiting or {}).values():
            call.error = SCError("Socket connection closed", name="BadConnectionError")
            call.done.set()
        self._waiting = None
