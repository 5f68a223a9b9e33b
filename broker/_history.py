"""Channel history: the types of the history step, shared by every broker (and the emitter).

A channel with history keeps its last ``size`` publications. Each publication gets an
**offset** (1, 2, 3 ... per channel, no gaps, no repeats, whichever worker or process published
it) and the channel has an **epoch**, a string that changes whenever the offset counter was lost
(its meta data expired, Redis was flushed or restarted without persistence). An offset means
something only together with its epoch: a :class:`StreamPosition`.

The history step is atomic: assigning the offset, storing the entry, trimming, refreshing the
expiry and publishing to the subscribed workers happen in one step, so what a worker receives
always carries the offset that was stored.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "HistoryBroker",
    "HistoryEntry",
    "HistoryOptions",
    "HistoryPage",
    "PositionedDeliverFn",
    "StreamPosition",
    "check_read",
    "new_epoch",
]

#: Thirty days: how long a channel's offset counter and epoch outlive its last publication by default.
DEFAULT_META_TTL = 30 * 86400.0


@dataclass(frozen=True, slots=True)
class HistoryOptions:
    """How much history a channel keeps.

    ``size``: publications kept (the oldest are trimmed). ``ttl``: seconds the history is kept
    after the channel's last publication (then it is dropped as a whole). ``meta_ttl``: seconds the
    offset counter and epoch are kept after the last publication or history read; when they expire
    the next publication starts a new epoch at offset 1.
    """

    size: int
    ttl: float
    meta_ttl: float = DEFAULT_META_TTL

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"history size must be at least 1, got {self.size}")
        if not self.ttl > 0:
            raise ValueError(f"history ttl must be positive, got {self.ttl}")
        if self.meta_ttl < self.ttl:
            raise ValueError(
                f"history meta ttl ({self.meta_ttl}) must not be shorter than its ttl ({self.ttl})"
            )


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """A place in a channel's history: ``offset`` (0 before the first publication) in ``epoch``."""

    offset: int
    epoch: str


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One stored publication."""

    offset: int
    data: Any


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """The answer to a history read.

    ``entries``: oldest first, or newest first when the read asked for ``reverse``.
    ``position``: the channel's newest offset and its epoch at the time of the read (read in the
    same atomic step as the entries).
    """

    entries: list[HistoryEntry]
    position: StreamPosition


def new_epoch() -> str:
    """A random epoch: 8 URL-safe characters (48 bits)."""
    return secrets.token_urlsafe(6)


def check_read(since: int | None, limit: int | None) -> None:
    """Raise :class:`ValueError` unless ``since`` and ``limit`` are None or integers >= 0."""
    for what, value in (("since", since), ("limit", limit)):
        if value is not None and (type(value) is not int or value < 0):
            raise ValueError(f"history {what} must be None or an integer >= 0, got {value!r}")


#: Called by a :class:`HistoryBroker` for every publication on a history channel this worker
#: subscribed to: ``(channel, data, offset, epoch)``. Synchronous; it must not block.
PositionedDeliverFn = Callable[[str, Any, int, str], None]


@runtime_checkable
class HistoryBroker(Protocol):
    """A broker capability: channels with history, offsets and epochs.

    Publications made with :meth:`publish_history` reach the subscribed workers through the
    function given to :meth:`attach_history` (never through the plain ``deliver``), carrying their
    offset and epoch. Per channel they are delivered in offset order, but a networked broker may
    drop some (pub/sub is at-most-once): a worker that sees a gap reads the missing ones with
    :meth:`history`. ``reconnected`` is called after the broker lost its subscriptions and has
    them back, since publications may have been missed in between.
    """

    def attach_history(self, deliver: PositionedDeliverFn, reconnected: Callable[[], None]) -> None:
        """Set the function that receives history publications, and the one told of a reconnect."""
        ...

    async def publish_history(self, channel: str, data: Any, options: HistoryOptions) -> StreamPosition:
        """Store, number and publish ``data`` in one atomic step; returns the offset it got.

        Raises :class:`~hubbub.broker.BrokerUnavailable` when the broker did not take it.
        """
        ...

    async def history(
        self,
        channel: str,
        options: HistoryOptions,
        *,
        since: int | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> HistoryPage:
        """Read stored publications of ``channel``.

        ``since``: only entries with a greater offset. ``limit``: at most this many (``0`` reads
        only the position; None for all). Without ``reverse`` the oldest matching entries come
        first; with it the newest. A channel that has no epoch yet gets one (so that a position
        read before the first publication stays valid after it); ``options`` gives its meta ttl.
        """
        ...

    async def remove_history(self, channel: str) -> None:
        """Drop the stored publications of ``channel``; its offset and epoch go on.

        Positions taken before stay valid (the next publication follows the last offset), so the
        workers' streams carry on; a recovery from before the removal finds nothing to replay.
        Raises :class:`~hubbub.broker.BrokerUnavailable` when the broker did not take it.
        """
        ...
