"""The worker's event loop: trio (the default) or asyncio (uvloop when installed).

Most of the worker uses anyio, which runs on both. The transport's hot path needs the loop's own
primitives (readiness waits on raw non-blocking sockets, a parking lot woken once per scheduler
step, the clock), so each loop has a :class:`Loop` whose attributes *are* those primitives: on
trio they are trio's own functions, called with no added indirection; on asyncio a thin layer
over the running loop's ``add_reader``/``add_writer`` and futures.
"""

from __future__ import annotations

import asyncio
import socket as stdsocket
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import sniffio
import trio

__all__ = [
    "ASYNCIO",
    "LOOPS",
    "TRIO",
    "Loop",
    "Lot",
    "Spawner",
    "current",
    "expect_running",
    "for_name",
    "foreign_loop_message",
    "run",
]

#: The values of the ``loop`` setting.
LOOPS = ("trio", "asyncio")

# An asyncio waiter is woken with False when its socket is being closed.
_WAKE, _CLOSING = True, False


class Lot(Protocol):
    """A parking lot: tasks park until another wakes them all (trio's ``ParkingLot`` subset)."""

    async def park(self) -> None: ...

    def unpark_all(self) -> Any: ...


class Spawner(Protocol):
    """Where tasks are started: a trio nursery or an anyio task group."""

    def start_soon(
        self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: Any = None
    ) -> Any: ...


@dataclass(frozen=True, slots=True, eq=False)
class Loop:
    """The primitives of one event loop that the transport's hot path calls directly."""

    name: str
    wait_readable: Callable[[stdsocket.socket], Awaitable[None]]
    wait_writable: Callable[[stdsocket.socket], Awaitable[None]]
    #: Wakes the socket's waiters with ``trio.ClosedResourceError`` (also on asyncio).
    notify_closing: Callable[[stdsocket.socket], None]
    #: ``wait_readable`` for a socket's read loop: on asyncio the reader stays registered between
    #: waits; ``notify_closing`` or ``forget_reader`` must come before the socket is closed.
    wait_readable_kept: Callable[[stdsocket.socket], Awaitable[None]]
    #: Stop watching a socket that ``wait_readable_kept`` watched (nothing waits on it any more).
    forget_reader: Callable[[stdsocket.socket], None]
    current_time: Callable[[], float]
    sleep_until: Callable[[float], Awaitable[None]]
    parking_lot: Callable[[], Lot]
    #: A new cancel scope (a context manager with ``cancel()``).
    cancel_scope: Callable[[], Any]
    move_on_after: Callable[[float], AbstractContextManager[Any]]
    open_nursery: Callable[[], AbstractAsyncContextManager[Any]]


class _AsyncioLot:
    """A parking lot on asyncio futures."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    async def park(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def unpark_all(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


def _wake(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(_WAKE)


class _AsyncioIO:
    """Readiness waits on raw sockets with the running asyncio loop (one waiter per socket and direction)."""

    __slots__ = ("_readers", "_writers")

    def __init__(self) -> None:
        self._readers: dict[int, asyncio.Future[bool]] = {}
        self._writers: dict[int, asyncio.Future[bool]] = {}

    async def wait_readable(self, sock: stdsocket.socket) -> None:
        await self._wait_once(sock, self._readers, reading=True)

    async def wait_writable(self, sock: stdsocket.socket) -> None:
        await self._wait_once(sock, self._writers, reading=False)

    async def _wait_once(
        self, sock: stdsocket.socket, waiters: dict[int, asyncio.Future[bool]], *, reading: bool
    ) -> None:
        """Wait until ``sock`` is readable (or writable), watching it only while waiting."""
        fd = sock.fileno()
        if fd < 0:
            raise trio.ClosedResourceError("the socket was closed")
        loop = asyncio.get_running_loop()
        add, remove = (
            (loop.add_reader, loop.remove_reader) if reading else (loop.add_writer, loop.remove_writer)
        )
        waiter: asyncio.Future[bool] = loop.create_future()
        waiters[fd] = waiter
        add(fd, _wake, waiter)
        try:
            woken = await waiter
        finally:
            if waiters.get(fd) is waiter:
                del waiters[fd]
                remove(fd)
        if woken is _CLOSING:
            raise trio.ClosedResourceError("another task closed this socket")

    async def wait_readable_kept(self, sock: stdsocket.socket) -> None:
        fd = sock.fileno()
        if fd < 0:
            raise trio.ClosedResourceError("the socket was closed")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        watched = fd in self._readers
        self._readers[fd] = waiter
        if not watched:
            loop.add_reader(fd, self._kept_ready, fd)
        if await waiter is _CLOSING:
            raise trio.ClosedResourceError("another task closed this socket")

    def _kept_ready(self, fd: int) -> None:
        waiter = self._readers.get(fd)
        if waiter is not None and not waiter.done():
            waiter.set_result(_WAKE)
            return
        # Readable while nobody waits (level-triggered: it would fire every iteration): stop
        # watching until the next wait.
        self._readers.pop(fd, None)
        asyncio.get_running_loop().remove_reader(fd)

    def forget_reader(self, sock: stdsocket.socket) -> None:
        fd = sock.fileno()
        if fd >= 0 and self._readers.pop(fd, None) is not None:
            asyncio.get_running_loop().remove_reader(fd)

    def notify_closing(self, sock: stdsocket.socket) -> None:
        fd = sock.fileno()
        if fd < 0:
            return
        loop = asyncio.get_running_loop()
        for waiters, remove in ((self._readers, loop.remove_reader), (self._writers, loop.remove_writer)):
            waiter = waiters.pop(fd, None)
            if waiter is not None:
                remove(fd)
                if not waiter.done():
                    waiter.set_result(_CLOSING)


class _AsyncioNursery:
    """``asyncio.TaskGroup`` with ``start_soon``: the worker's tasks, one per connection among them.

    anyio's task group costs about 1.9 KiB per task on asyncio (a handle, an event, a cancel
    scope); the standard one costs a task and a done callback, as a trio nursery does. Children
    are cancelled with ``Task.cancel()`` when the group is (anyio's shields do not hold there).
    """

    __slots__ = ("_group",)

    def __init__(self) -> None:
        self._group = asyncio.TaskGroup()

    async def __aenter__(self) -> _AsyncioNursery:
        await self._group.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._group.__aexit__(*exc_info)

    def start_soon(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: Any = None) -> None:
        coro = func(*args)
        try:
            self._group.create_task(coro, name=name)
        except RuntimeError:  # the group is being cancelled: the task would be cancelled at once
            coro.close()


async def _asyncio_sleep_until(deadline: float) -> None:
    """Sleep until ``deadline`` on the clock of ``ASYNCIO.current_time`` (``time.monotonic``).

    Not the running loop's ``time()``: looking the loop up costs a ``getpid`` syscall on Python
    3.11, and the read loop asks for the time at every read.
    """
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))


_IO = _AsyncioIO()


def _ignore(sock: stdsocket.socket) -> None:
    """Trio registers a socket only while a task waits on it: nothing to forget."""


TRIO = Loop(
    name="trio",
    wait_readable=trio.lowlevel.wait_readable,
    wait_writable=trio.lowlevel.wait_writable,
    notify_closing=trio.lowlevel.notify_closing,
    wait_readable_kept=trio.lowlevel.wait_readable,
    forget_reader=_ignore,
    current_time=trio.current_time,
    sleep_until=trio.sleep_until,
    parking_lot=trio.lowlevel.ParkingLot,
    cancel_scope=trio.CancelScope,
    move_on_after=trio.move_on_after,
    open_nursery=trio.open_nursery,
)

ASYNCIO = Loop(
    name="asyncio",
    wait_readable=_IO.wait_readable,
    wait_writable=_IO.wait_writable,
    notify_closing=_IO.notify_closing,
    wait_readable_kept=_IO.wait_readable_kept,
    forget_reader=_IO.forget_reader,
    current_time=time.monotonic,
    sleep_until=_asyncio_sleep_until,
    parking_lot=_AsyncioLot,
    cancel_scope=anyio.CancelScope,
    move_on_after=anyio.move_on_after,
    open_nursery=_AsyncioNursery,
)


def for_name(name: str) -> Loop:
    """The :class:`Loop` of a ``loop`` setting's value."""
    if name == "trio":
        return TRIO
    if name == "asyncio":
        return ASYNCIO
    raise ValueError(f"unknown loop {name!r}: use one of {', '.join(LOOPS)}")


def current() -> Loop:
    """The :class:`Loop` of the running async library (trio or asyncio)."""
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        raise RuntimeError("hubbub must run inside trio or asyncio") from None
    if library not in LOOPS:
        raise RuntimeError(f"hubbub runs on trio or asyncio, not {library}")
    return for_name(library)


def expect_running(loop: Loop) -> None:
    """Raise a one-line error unless ``loop`` is the running one."""
    running = current().name
    if running != loop.name:
        raise RuntimeError(
            f"this worker is set up for --loop {loop.name} but runs on {running}: "
            f"set the `loop` setting to {running}"
        )


def run(main: Callable[[], Coroutine[Any, Any, Any]], loop: str, *, use_uvloop: bool = True) -> Any:
    """Run ``main()`` to completion on a new ``loop``; asyncio uses uvloop when installed and asked."""
    if loop == "trio":
        return trio.run(main)
    for_name(loop)
    factory = None
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())


def foreign_loop_message(error: BaseException, where: str) -> str | None:
    """One line naming the ``--loop`` to use when ``error`` came from a library of the other loop, else None."""
    text = str(error)
    try:
        running = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return None
    if running == "trio" and (
        (isinstance(error, RuntimeError) and "no running event loop" in text)
        or (isinstance(error, TypeError) and "unrecognized yield message" in text)
    ):
        other = "asyncio"
    elif (
        running == "asyncio"
        and isinstance(error, RuntimeError)
        and "must be called from async context" in text
    ):
        other = "trio"
    else:
        return None
    return (
        f"{where} uses {other}, but this worker runs on {running}: "
        f"run it with --loop {other} (the `loop` setting)"
    )
