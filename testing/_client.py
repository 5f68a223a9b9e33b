"""``AppClient``: a client that records what the server sends it, for assertions."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from hubbub.client import Client

__all__ = ["AppClient", "NothingReceived"]

#: Seconds :meth:`AppClient.receive` waits by default.
RECEIVE_TIMEOUT = 5.0


class NothingReceived(AssertionError):
    """:meth:`AppClient.receive` waited in vain; the message lists what did arrive."""


class AppClient:
    """A connected :class:`hubbub.client.Client` that records every event the server transmits.

    Everything the client offers is here too (``invoke``, ``transmit``, ``publish``,
    ``subscribe``, ``authenticate``...); :attr:`client` is the client itself. On top of it::

        assert await client.receive("greeting") == {"text": "hi"}   # the next "greeting" transmit
        assert client.received == [("greeting", {"text": "hi"})]    # every transmit so far
    """

    __test__ = False  # not a test class, whatever a test module imports it as

    def __init__(self, client: Client) -> None:
        #: The underlying client.
        self.client = client
        #: ``(event, data)`` of every transmit the server sent, in order.
        self.received: list[tuple[str, Any]] = []
        self._unread: list[tuple[str, Any]] = []
        self._changed = anyio.Event()
        self._ended = False

    @classmethod
    @asynccontextmanager
    async def recording(cls, client: Client) -> AsyncIterator[AppClient]:
        """Record ``client``'s transmits for the block."""
        recorder = cls(client)
        async with client.listen_all(max_size=100_000) as stream, anyio.create_task_group() as tg:
            tg.start_soon(recorder._record, stream)
            try:
                yield recorder
            finally:
                tg.cancel_scope.cancel()

    async def _record(self, stream: AsyncIterator[tuple[str, Any]]) -> None:
        try:
            async for item in stream:
                self.received.append(item)
                self._unread.append(item)
                self._changed.set()
                self._changed = anyio.Event()
        except Exception:  # the client closed: nothing more will arrive
            pass
        self._ended = True
        self._changed.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def receive(self, event: str | None = None, *, timeout: float = RECEIVE_TIMEOUT) -> Any:
        """The data of the next transmit of ``event`` not returned yet (of any event when None).

        Each transmit is returned once, in the order they arrived; those of other events stay
        for later calls. With ``event=None`` the answer is the pair ``(event, data)``. Raises
        :class:`NothingReceived` (an ``AssertionError``) after ``timeout`` seconds, or at once
        when the client has closed.
        """
        with anyio.move_on_after(timeout if timeout is not None else math.inf):
            while True:
                for index, (name, data) in enumerate(self._unread):
                    if event is None or name == event:
                        del self._unread[index]
                        return (name, data) if event is None else data
                if self._ended:
                    break
                await self._changed.wait()
        wanted = "a transmit" if event is None else f"a transmit of {event!r}"
        raise NothingReceived(f"no {wanted} within {timeout} s; received so far: {self.received!r}")
