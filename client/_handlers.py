"""User handlers for what the server sends unasked: procedures (server invokes) and receivers (transmits)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from hubbub.protocol import Invoke, SCError, dehydrate_error, response_packet

from ._buffer import MessageBuffer, Overflow
from ._session import Session

__all__ = ["Handler", "Handlers", "Spawn"]

log = logging.getLogger("hubbub.client")

#: A procedure or receiver handler: called with the request data; may be a coroutine function.
Handler = Callable[[Any], Any]
#: Starts a task (``TaskGroup.start_soon``).
Spawn = Callable[..., None]


class Handlers:
    """The procedure and receiver tables, and ``listen`` streams of transmitted events."""

    def __init__(
        self, procedures: Mapping[str, Handler] | None, receivers: Mapping[str, Handler] | None
    ) -> None:
        self._procedures: dict[str, Handler] = dict(procedures or {})
        self._receivers: dict[str, Handler] = dict(receivers or {})
        self._listeners: dict[str, set[MessageBuffer[Any]]] = {}
        self._taps: set[MessageBuffer[tuple[str, Any]]] = set()

    def set_procedure(self, name: str, handler: Handler | None) -> None:
        """Install (or with None remove) the handler for server invokes of ``name``."""
        _set_or_remove(self._procedures, name, handler)

    def set_receiver(self, name: str, handler: Handler | None) -> None:
        """Install (or with None remove) the handler for server transmits of ``name``."""
        _set_or_remove(self._receivers, name, handler)

    @asynccontextmanager
    async def listen(self, event: str, max_size: int) -> AsyncIterator[AsyncIterator[Any]]:
        """An iterator of the data of each ``event`` transmit while the context is open."""
        buffer: MessageBuffer[Any] = MessageBuffer(max_size, Overflow.DROP_OLDEST)
        self._listeners.setdefault(event, set()).add(buffer)
        try:
            yield _BufferIterator(buffer)
        finally:
            listeners = self._listeners.get(event, set())
            listeners.discard(buffer)
            if not listeners:
                self._listeners.pop(event, None)

    @asynccontextmanager
    async def listen_all(self, max_size: int) -> AsyncIterator[AsyncIterator[tuple[str, Any]]]:
        """An iterator of ``(event, data)`` for every transmit while the context is open."""
        buffer: MessageBuffer[tuple[str, Any]] = MessageBuffer(max_size, Overflow.DROP_OLDEST)
        self._taps.add(buffer)
        try:
            yield _BufferIterator(buffer)
        finally:
            self._taps.discard(buffer)

    def close(self, error: BaseException) -> None:
        """End every ``listen`` stream with ``error`` (the client closed)."""
        for buffers in [*self._listeners.values(), self._taps]:
            for buffer in buffers:
                buffer.close(error)

    def on_transmit(self, event: str, data: Any, spawn: Spawn) -> None:
        """A user transmit arrived: feed the listeners, call the receiver."""
        for buffer in self._listeners.get(event, ()):
            buffer.put(data)
        for tap in self._taps:
            tap.put((event, data))
        handler = self._receivers.get(event)
        if handler is None:
            return
        try:
            result = handler(data)
        except Exception:
            log.exception("receiver %r failed", event)
            return
        if inspect.isawaitable(result):
            spawn(_await_quietly, result, event)

    def on_invoke(self, session: Session, request: Invoke, spawn: Spawn) -> None:
        """A user invoke arrived: run its procedure in a task and answer on ``session``."""
        handler = self._procedures.get(request.event)
        if handler is None:
            message = f"No procedure handler for {request.event!r} on this client"
            session.send(response_packet(request.cid, error={"message": message, "name": "NoProcedureError"}))
        else:
            spawn(_run_procedure, session, request, handler)


class _BufferIterator:
    def __init__(self, buffer: MessageBuffer[Any]) -> None:
        self._buffer = buffer

    def __aiter__(self) -> _BufferIterator:
        return self

    async def __anext__(self) -> Any:
        return await self._buffer.get()


def _set_or_remove(table: dict[str, Handler], name: str, handler: Handler | None) -> None:
    if handler is None:
        table.pop(name, None)
    else:
        table[name] = handler


async def _await_quietly(awaitable: Awaitable[Any], name: str) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("receiver %r failed", name)


async def _run_procedure(session: Session, request: Invoke, handler: Handler) -> None:
    try:
        result = handler(request.data)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        if not isinstance(exc, SCError):
            log.info("procedure %r raised %r", request.event, exc)
        packet = response_packet(request.cid, error=dehydrate_error(exc))
    else:
        packet = response_packet(request.cid, data=result)
    session.send(packet)
