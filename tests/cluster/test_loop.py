"""The asyncio side of the worker's loop layer: the task group that runs its connections."""

from __future__ import annotations

import asyncio

import anyio
import pytest

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
