"""Calls to the server: transmits, requests, and the table that matches each response to its request.

A request gets the next call id (``cid``) and a :class:`PendingCall` in the table; the server's
response with that ``rid`` completes it, and a disconnect fails every pending call. Ids continue
across reconnects (the handshake takes one too), as socketcluster-client's do.
"""

from __future__ import annotations

from typing import Any

import anyio

from hubbub.protocol import CallIds, Response, client_invoke_packet, hydrate_error, transmit_packet

from ._errors import AckTimeoutError, ConnectionClosedError, NotConnectedError, RemoteError
from ._session import PacketSink, Session, SessionLink

__all__ = ["OUTBOX_LIMIT", "CallTable", "PendingCall"]

#: Calls wait while this many messages are queued on the connection and not yet written.
OUTBOX_LIMIT = 1024


class PendingCall:
    """One request waiting for its response (or for the connection to drop)."""

    __slots__ = ("cid", "done", "error", "response")

    def __init__(self, cid: int) -> None:
        self.cid = cid
        self.done = anyio.Event()
        self.response: Response | None = None
        self.error: BaseException | None = None


class CallTable:
    """Sends requests and transmits on the current session; matches responses to requests."""

    def __init__(self, link: SessionLink, *, ack_timeout: float, url: str) -> None:
        self._link = link
        self._ack_timeout = ack_timeout
        self._url = url
        self._ids = CallIds()
        self._pending: dict[int, PendingCall] = {}

    def __len__(self) -> int:
        """Requests sent and not answered yet."""
        return len(self._pending)

    def next_id(self) -> int:
        """Take a call id without a table entry (the handshake's)."""
        return self._ids.next()

    async def request(self, event: str, data: Any, timeout: float | None = None) -> Any:
        """Send a request once connected and return the response data.

        Raises :class:`RemoteError` for an error response, :class:`AckTimeoutError` when no
        response comes within ``timeout`` (default: ``ack_timeout``) seconds, waiting for the
        connection included, and :class:`ConnectionClosedError` when the connection drops first.
        """
        try:
            with anyio.fail_after(self._ack_timeout if timeout is None else timeout):
                session = await self._link.wait_session()
                await session.wait_backlog_below(OUTBOX_LIMIT)
                return await self.result(self.send(session, event, data))
        except TimeoutError:
            raise AckTimeoutError(f"Event response for {event} event timed out") from None

    async def transmit(self, event: str, data: Any = None) -> None:
        """Queue an event with no reply; raises :class:`NotConnectedError` after ``ack_timeout``."""
        (await self._writable_session()).send(transmit_packet(event, data))

    def send(self, sink: PacketSink, event: str, data: Any) -> PendingCall:
        """Queue a request now (so requests leave in call order); await it with :meth:`result`."""
        call = PendingCall(self._ids.next())
        self._pending[call.cid] = call
        sink.send(client_invoke_packet(event, data, call.cid))
        return call

    async def result(self, call: PendingCall) -> Any:
        """Wait for ``call``'s response: its data, or its error raised (:class:`RemoteError`)."""
        try:
            await call.done.wait()
        finally:
            self._pending.pop(call.cid, None)
        if call.error is not None:
            raise call.error
        assert call.response is not None
        error = hydrate_error(call.response.error)
        if error is not None:
            raise RemoteError.from_sc(error)
        return call.response.data

    def resolve(self, response: Response) -> None:
        """A response arrived: complete its call (responses to nothing pending are ignored)."""
        call = self._pending.get(int(response.rid)) if float(response.rid).is_integer() else None
        if call is not None:
            call.response = response
            call.done.set()

    def fail_all(self, code: int, reason: str) -> None:
        """The connection closed with ``code``: every pending call raises ``ConnectionClosedError``."""
        for call in self._pending.values():
            message = f"connection closed (code {code}) before the response arrived"
            call.error = ConnectionClosedError(message, code=code, reason=reason)
            call.done.set()
        self._pending.clear()

    async def _writable_session(self) -> Session:
        with anyio.move_on_after(self._ack_timeout):
            session = await self._link.wait_session()
            await session.wait_backlog_below(OUTBOX_LIMIT)
            return session
        raise NotConnectedError(f"no connection to {self._url} within {self._ack_timeout:g} s")
