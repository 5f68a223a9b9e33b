"""Ordered lanes: calls of one name run one after another, different names concurrently."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Lanes"]

_Queue = deque[tuple[Callable[..., Awaitable[None]], tuple[Any, ...]]]


class Lanes:
    """Like one async stream per name, as the ``for await`` loops of a socketcluster-server app.

    ``spawn(fn, *args)`` starts a task (the connection's); a lane's task exists while it has work.
    """

    __slots__ = ("_lanes", "_spawn", "pending")

    def __init__(self, spawn: Callable[..., None]) -> None:
        self._spawn = spawn
        self._lanes: dict[str, _Queue] | None = None
        #: Calls queued or running in all lanes.
        self.pending = 0

    def enqueue(self, lane: str, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run ``fn(*args)`` after the earlier calls of ``lane``."""
        if self._lanes is None:
            self._lanes = {}
        queue = self._lanes.get(lane)
        if queue is None:
            queue = self._lanes[lane] = deque()
            self._spawn(self._drain, lane, queue)
        queue.append((fn, args))
        self.pending += 1

    async def _drain(self, lane: str, queue: _Queue) -> None:
        try:
            while queue:
                fn, args = queue.popleft()
                try:
                    await fn(*args)
                finally:
                    self.pending -= 1
        finally:
            if self._lanes is not None and self._lanes.get(lane) is queue:
                del self._lanes[lane]
