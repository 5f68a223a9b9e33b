"""Flow control: a burst slows its sender instead of dropping a subscriber that keeps reading.

A socket whose backlog (what the kernel has not taken) passes ``outbound_limit`` is *congested*.
It is closed with 4010 only when it stays congested with no progress (the kernel takes none of
its bytes) for ``slow_consumer_timeout``, or when its backlog passes ``outbound_hard_limit``. A
client that publishes to a channel with a congested local subscriber that is still reading (it
made progress within :data:`HOLD_GRACE`) stops being read (its own TCP window then pushes back on
it) until that subscriber is below the limit again; a subscriber that has stopped reading holds
nobody back, it only waits for its timeout or its hard limit. Every publishing client waits
while the backlogs of the whole worker pass ``worker_outbound_limit``. What arrives from other workers through the broker is never held back
(the worker keeps reading its broker connection); the per-socket limits bound it. See
``docs/flow-control.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import Any, Protocol

from .._loop import TRIO, Loop

__all__ = ["HOLD_GRACE", "Congestible", "FlowControl"]

#: Seconds since its last progress for which a congested subscriber still holds publishers back.
HOLD_GRACE = 0.5


class Congestible(Protocol):
    """An outbound buffer as flow control sees it."""

    @property
    def tag(self) -> Any:
        """The subscriber this buffer writes for (the hub's member), or None."""
        ...

    @property
    def backlog(self) -> int:
        """Bytes held until the kernel takes them."""
        ...

    def stalled(self) -> None:
        """Congested without progress for too long: close as a slow consumer."""
        ...


class FlowControl:
    """The congestion state of one worker's outbound buffers."""

    def __init__(
        self, *, hard_limit: int, stall_timeout: float, worker_limit: int, loop: Loop = TRIO
    ) -> None:
        self._loop = loop
        #: Backlog bytes past which a socket is closed at once (4010).
        self.hard_limit = hard_limit
        self._stall_timeout = stall_timeout
        self._worker_limit = worker_limit
        #: Congested buffers and when each last made progress (empty on the fast path: one check).
        self.congested: dict[Congestible, float] = {}
        #: Buffers with any backlog (summed at each check for the worker's total).
        self._backlogged: set[Congestible] = set()
        #: True while the worker's backlogs together pass ``worker_limit`` (updated by :meth:`check`).
        self.over_worker_limit = False
        self._lot = loop.parking_lot()

    # -- reported by the outbound buffers ------------------------------------------------------

    def backlogged(self, out: Congestible) -> None:
        """``out`` now holds bytes the kernel refused."""
        self._backlogged.add(out)

    def congest(self, out: Congestible) -> None:
        """``out`` passed the soft limit."""
        if out not in self.congested:
            self.congested[out] = self._loop.current_time()

    def progress(self, out: Congestible, below_limit: bool) -> None:
        """The kernel took bytes of ``out``; ``below_limit``: its backlog is under the soft limit again."""
        if out in self.congested:
            if below_limit:
                del self.congested[out]
                self._lot.unpark_all()
            else:
                self.congested[out] = self._loop.current_time()

    def release(self, out: Congestible) -> None:
        """``out`` has no backlog any more, or its connection ended."""
        self._backlogged.discard(out)
        if self.congested.pop(out, None) is not None:
            self._lot.unpark_all()

    def wake(self) -> None:
        """Something that may hold publishers back has eased (a filter queue drained): let them check."""
        self._lot.unpark_all()

    # -- asked by publishers and the timers ----------------------------------------------------

    def holds(self, members: Container[Any] | None) -> bool:
        """Whether a client that just published to a channel with these ``members`` must wait."""
        if self.over_worker_limit:
            return True
        if not self.congested or not members:
            return False
        reading_since = self._loop.current_time() - HOLD_GRACE
        return any(since >= reading_since and out.tag in members for out, since in self.congested.items())

    async def wait(self, holds: Callable[[], bool], still_open: Callable[[], bool]) -> None:
        """Return once ``holds()`` is False (checked whenever congestion eases) or the connection ends."""
        while holds() and still_open():
            with self._loop.move_on_after(HOLD_GRACE):  # a subscriber may stop reading meanwhile
                await self._lot.park()

    def check(self, now: float) -> None:
        """Close the buffers stalled too long; recompute whether the worker is over its limit."""
        for out, since in list(self.congested.items()):
            if now - since > self._stall_timeout:
                del self.congested[out]
                out.stalled()
        total = sum(out.backlog for out in self._backlogged)
        over = total > self._worker_limit
        if self.over_worker_limit and not over:
            self._lot.unpark_all()
        self.over_worker_limit = over
