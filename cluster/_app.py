"""The object an application is written against: procedures, receivers, middleware, publish.

Example::

    app = App()

    @app.procedure("echo")
    async def echo(request: Request) -> object:
        return request.data

    @app.middleware("inbound")
    async def guard(action: Action) -> None:
        if action.type is ActionType.SUBSCRIBE and action.channel == "admin":
            action.block(SCError("Not allowed", name="ForbiddenError"))
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from hubbub.broker import ChannelOptions, ChannelRule, HistoryPage, StreamPosition
from hubbub.protocol import UNDEFINED, SCError

from ._middleware import Middleware, MiddlewareLine
from ._validation import Converter, converter_for

if TYPE_CHECKING:
    from ._socket import ServerSocket

__all__ = [
    "App",
    "ConnectionHook",
    "DisconnectionHook",
    "LifespanHook",
    "Procedure",
    "Publisher",
    "Receiver",
    "Request",
    "Responder",
]


class Publisher(Protocol):
    """Where an app's publications go (the worker's publisher)."""

    async def publish(self, channel: str, data: Any) -> StreamPosition | None:
        """Publish ``data`` on ``channel``; raises BrokerError when the broker cannot take it."""
        ...

    async def history(
        self, channel: str, *, since: int | None = None, limit: int | None = None, reverse: bool = False
    ) -> HistoryPage:
        """Read the stored publications of a channel with history."""
        ...


class Responder(Protocol):
    """Where a :class:`Request`'s answer goes (the session of the client that invoked)."""

    def respond(self, cid: int | float, data: Any = UNDEFINED) -> None: ...

    def respond_error(self, cid: int | float, error: BaseException | dict[str, Any]) -> None: ...


class Request:
    """A client's ``invoke`` of a procedure.

    The procedure answers by returning a value (the response data; None sends no data) or raising an
    exception (the response error: an :class:`~hubbub.protocol.SCError` keeps its name and fields,
    a plain ``Exception`` sends its message; any other exception is taken for a bug and sends a
    generic error, its details going to the log). ``end``/``error`` answer explicitly, e.g. before
    doing more work; the return value is then ignored. A result the codec cannot encode is answered
    with an error.
    """

    __slots__ = ("_answered", "_responder", "cid", "data", "procedure", "socket")

    def __init__(
        self, socket: ServerSocket, procedure: str, data: Any, cid: int | float, responder: Responder
    ) -> None:
        self.socket = socket
        self.procedure = procedure
        self.data = data
        self.cid = cid
        self._responder = responder
        self._answered = False

    @property
    def answered(self) -> bool:
        return self._answered

    def end(self, data: Any = UNDEFINED) -> None:
        """Answer with ``data`` (``end()`` sends no data member, ``end(None)`` sends null)."""
        if not self._answered:
            self._answered = True
            self._responder.respond(self.cid, data)

    def error(self, error: BaseException) -> None:
        """Answer with an error."""
        if not self._answered:
            self._answered = True
            self._responder.respond_error(self.cid, error)


Procedure = Callable[[Request], Awaitable[Any]]
Receiver = Callable[["ServerSocket", Any], Awaitable[None]]
ConnectionHook = Callable[["ServerSocket"], Awaitable[None]]
DisconnectionHook = Callable[["ServerSocket", int, str], Awaitable[None]]
LifespanHook = Callable[[], Awaitable[None]]
_F = TypeVar("_F")
log = logging.getLogger("hubbub.app")


class App:
    """An application: what a worker does with sockets beyond the protocol itself."""

    def __init__(self) -> None:
        self.procedures: dict[str, Procedure] = {}
        self.receivers: dict[str, Receiver] = {}
        self.middleware_chains: dict[MiddlewareLine, list[Middleware]] = {line: [] for line in MiddlewareLine}
        self.connection_hooks: list[ConnectionHook] = []
        self.disconnection_hooks: list[DisconnectionHook] = []
        self.startup_hooks: list[LifespanHook] = []
        self.shutdown_hooks: list[LifespanHook] = []
        #: Per-channel options by name pattern, after those of the config file (first match wins).
        self.channel_rules: tuple[ChannelRule, ...] = ()
        self._publisher: Publisher | None = None

    def channels(self, match: str, **options: Any) -> None:
        """Give the channels whose names match the glob ``match`` these options (first match wins).

        ``app.channels("chat/*", history_size=100, history_ttl=600)`` keeps the last 100
        publications of every ``chat/...`` channel for 10 minutes after the last one, with offsets
        and recovery. Options: ``history_size``, ``history_ttl``, ``history_meta_ttl`` (see
        ``docs/configuration.md``). Rules of the config file (``[[channels]]``) come first.
        """
        self.channel_rules += (
            ChannelRule(match, ChannelOptions.from_mapping(options, where=f"channels({match!r})")),
        )

    def procedure(self, name: str, *, model: Any = None) -> Callable[[Procedure], Procedure]:
        """Register the function that answers ``invoke(name, data)``.

        With ``model`` (a ``msgspec.Struct``, a pydantic model, or any type msgspec or pydantic
        converts to), ``request.data`` is that model, converted from what the client sent; data
        that does not fit is answered with an ``InvalidArgumentsError`` and the procedure is not
        called.
        """

        convert = None if model is None else converter_for(model, f"procedure {name!r}")

        def register(fn: Procedure) -> Procedure:
            self.procedures[name] = fn if convert is None else _validated_procedure(fn, convert)
            return fn

        return register

    def receiver(self, name: str, *, model: Any = None) -> Callable[[Receiver], Receiver]:
        """Register the function called for ``transmit(name, data)``: ``fn(socket, data)``.

        With ``model``, ``data`` is converted as for :meth:`procedure`; data that does not fit is
        dropped with one INFO line in the log (a transmit has no answer to carry the error).
        """

        convert = None if model is None else converter_for(model, f"receiver {name!r}")

        def register(fn: Receiver) -> Receiver:
            self.receivers[name] = fn if convert is None else _validated_receiver(fn, convert)
            return fn

        return register

    def middleware(self, line: str | MiddlewareLine) -> Callable[[Middleware], Middleware]:
        """Register a middleware on ``"handshake"``, ``"inboundRaw"``, ``"inbound"`` or ``"outbound"``."""
        key = MiddlewareLine(line)

        def register(fn: Middleware) -> Middleware:
            self.middleware_chains[key].append(fn)
            return fn

        return register

    def on_connection(self, fn: ConnectionHook) -> ConnectionHook:
        """Call ``fn(socket)`` after each successful handshake."""
        self.connection_hooks.append(fn)
        return fn

    def on_disconnection(self, fn: DisconnectionHook) -> DisconnectionHook:
        """Call ``fn(socket, code, reason)`` when a handshaken socket closes."""
        self.disconnection_hooks.append(fn)
        return fn

    def on_startup(self, fn: LifespanHook) -> LifespanHook:
        """Await ``fn()`` when a worker starts, before it accepts connections.

        Hooks run in the order they were registered; one that raises stops the worker from
        starting. Each worker process runs them (``--workers 4`` runs them four times).
        """
        self.startup_hooks.append(fn)
        return fn

    def on_shutdown(self, fn: LifespanHook) -> LifespanHook:
        """Await ``fn()`` when a worker stops, after its sockets are closed (drained).

        Hooks run in the order they were registered; one that raises is logged and the others
        still run.
        """
        self.shutdown_hooks.append(fn)
        return fn

    async def run_startup(self) -> None:
        """Run the startup hooks (the worker calls this)."""
        for hook in self.startup_hooks:
            await hook()

    async def run_shutdown(self) -> None:
        """Run the shutdown hooks, each even if one before it raised (the worker calls this)."""
        for hook in self.shutdown_hooks:
            try:
                await hook()
            except Exception:
                log.exception("shutdown hook %r failed", hook)

    def bind(self, publisher: Publisher) -> None:
        """Attach the app to the worker that runs it (its publications go to ``publisher``)."""
        self._publisher = publisher

    async def publish(self, channel: str, data: Any) -> None:
        """Publish ``data`` on ``channel`` to every subscriber on every worker.

        Raises :class:`~hubbub.protocol.BrokerError` when the broker cannot take it.
        """
        if self._publisher is None:
            raise RuntimeError("the app is not running in a server yet")
        await self._publisher.publish(channel, data)

    async def history(
        self, channel: str, *, since: int | None = None, limit: int | None = None, reverse: bool = False
    ) -> HistoryPage:
        """The stored publications of ``channel`` (which must have history) and its current position.

        ``page.entries`` are the publications with an offset above ``since`` (all when None), the
        oldest first, or the newest first with ``reverse=True``; at most ``limit`` of them (``0``
        reads only ``page.position``, the newest offset and the epoch). Offsets mean something
        only with the epoch: compare ``page.position.epoch`` with the one you stored. Raises
        :class:`ValueError` for a channel without history and
        :class:`~hubbub.protocol.BrokerError` when the broker cannot be read.
        """
        if self._publisher is None:
            raise RuntimeError("the app is not running in a server yet")
        return await self._publisher.history(channel, since=since, limit=limit, reverse=reverse)


def _validated_procedure(fn: Procedure, convert: Converter) -> Procedure:
    async def validated(request: Request) -> Any:
        request.data = convert(request.data)
        return await fn(request)

    return validated


def _validated_receiver(fn: Receiver, convert: Converter) -> Receiver:
    async def validated(socket: ServerSocket, data: Any) -> None:
        try:
            data = convert(data)
        except SCError as error:
            log.info("socket %s: dropped a transmit: %s", socket.id, error.message)
            return
        await fn(socket, data)

    return validated
