"""The asyncio side of the worker's loop layer: the task group that runs its connections."""

from __future__ import annotations

import asyncio
import socket

import anyio
import pytest
import trio

from hubbub.cluster._loop import ASYNCIO

pytestmark = pytest.mark.timeout(10)


def test_cancelling_the_worker_cancels_every_task_it_started() -> None:
    """An anyio cancel scope (how the runner and ``serve`` stop a worker) ends the group's tasks."""
    cleaned: list[int] = []

    async def child(n: int, started: asyncio.Event) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(n)

    async def main() -> None:
        with anyio.CancelScope() as scope:
            async with ASYNCIO.open_nursery() as nursery:
                events = [asyncio.Event() for _ in range(3)]
                for n, started in enumerate(events):
                    nursery.start_soon(child, n, started)
                for started in events:
                    await started.wait()
                scope.cancel()
        assert scope.cancelled_caught

    asyncio.run(main())
    assert sorted(cleaned) == [0, 1, 2]


def test_a_failing_task_ends_the_group_with_its_error() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    async def main() -> None:
        async with ASYNCIO.open_nursery() as nursery:
            nursery.start_soon(asyncio.sleep, 30)
            nursery.start_soon(fails)

    with pytest.raises(ExceptionGroup) as raised:
        asyncio.run(main())
    assert raised.group_contains(ValueError, match="boom")


def test_a_task_started_while_the_group_is_cancelled_is_dropped_quietly() -> None:
    """A connection ending during shutdown may start a task; it must not turn into an error."""
    ran: list[str] = []

    async def late() -> None:
        ran.append("late")

    async def child(nursery: object) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            nursery.start_soon(late)  # type: ignore[attr-defined]

    async def main() -> None:
        with anyio.CancelScope() as scope:
            async with ASYNCIO.open_nursery() as nursery:
                nursery.start_soon(child, nursery)
                await asyncio.sleep(0)
                scope.cancel()

    asyncio.run(main())
    assert ran == []


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_a_read_loop_keeps_its_reader_and_misses_nothing(use_uvloop: bool) -> None:
    """The read loop's reader stays registered between waits. A forgotten socket's fd number is
    watched anew when the kernel reuses it; data that arrives while nobody waits is seen by the
    next wait; ``notify_closing`` wakes a waiting read loop."""

    async def wait(sock: socket.socket) -> None:
        async with asyncio.timeout(5):  # in this task, as the read loop waits (no wrapper task)
            await ASYNCIO.wait_readable_kept(sock)

    async def main() -> None:
        a, b = _pair()
        b.send(b"x")
        await wait(a)
        assert a.recv(16) == b"x"
        fd = a.fileno()
        ASYNCIO.forget_reader(a)
        a.close()
        b.close()
        reader, writer = _pair()  # the kernel reuses the lowest free fd number
        assert reader.fileno() == fd
        for byte in (b"1", b"2", b"3"):
            writer.send(byte)
            await wait(reader)
            assert reader.recv(16) == byte
        writer.send(b"y")  # readable while nobody waits: the reader is dropped, not spun on
        for _ in range(3):
            await asyncio.sleep(0)
        await wait(reader)  # and the next wait still sees the byte
        assert reader.recv(16) == b"y"
        waiting = asyncio.get_running_loop().create_task(ASYNCIO.wait_readable_kept(reader))
        for _ in range(3):
            await asyncio.sleep(0)
        ASYNCIO.notify_closing(reader)
        with pytest.raises(trio.ClosedResourceError):
            await asyncio.wait_for(waiting, 5)
        reader.close()
        writer.close()

    if use_uvloop:
        uvloop = pytest.importorskip("uvloop")
        uvloop.run(main())
    else:
        asyncio.run(main())


def _pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    return a, b
