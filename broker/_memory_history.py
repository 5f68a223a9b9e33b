"""Channel history in one process: offsets, epochs and the kept publications, with lazy expiry."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from ._history import HistoryEntry, HistoryOptions, HistoryPage, StreamPosition, check_read, new_epoch

__all__ = ["MemoryHistory"]

#: Channel states kept before expired ones are swept out (the threshold doubles with the count).
_SWEEP_AT = 1024


@dataclass(slots=True)
class _Channel:
    epoch: str
    meta_expires: float
    offset: int = 0
    history_expires: float = 0.0
    entries: deque[HistoryEntry] = field(default_factory=deque)


class MemoryHistory:
    """The history of every channel of a :class:`~hubbub.broker.MemoryBroker`.

    The same semantics as on Redis: offsets 1, 2, 3 ... per channel; an epoch chosen when a
    channel has no state (first publish or read), kept until ``meta_ttl`` after its last publish
    or read; the last ``size`` publications, dropped as a whole ``ttl`` after the last publish.
    Expiry is checked on access (``clock``: :func:`time.monotonic`); expired states are swept out
    whenever the number of channels doubled.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._channels: dict[str, _Channel] = {}
        self._sweep_at = _SWEEP_AT

    def publish(self, channel: str, data: Any, options: HistoryOptions) -> StreamPosition:
        """Store ``data`` as ``channel``'s next publication; returns its position."""
        now = self._clock()
        state = self._state(channel, options, now)
        state.offset += 1
        entries = state.entries
        if entries.maxlen != options.size:
            entries = state.entries = deque(entries, maxlen=options.size)
        entries.append(HistoryEntry(state.offset, data))
        state.history_expires = now + options.ttl
        return StreamPosition(state.offset, state.epoch)

    def read(
        self, channel: str, options: HistoryOptions, since: int | None, limit: int | None, reverse: bool
    ) -> HistoryPage:
        """``channel``'s position and its kept publications after ``since`` (see ``HistoryBroker.history``)."""
        check_read(since, limit)
        state = self._state(channel, options, self._clock())
        position = StreamPosition(state.offset, state.epoch)
        entries = state.entries
        if limit == 0 or not entries:
            return HistoryPage([], position)
        start = max(0, (since or 0) + 1 - entries[0].offset)
        count = len(entries) - start if limit is None else min(limit, len(entries) - start)
        if count <= 0:
            return HistoryPage([], position)
        if reverse:
            chosen = list(islice(reversed(entries), count))
        else:
            chosen = list(islice(entries, start, start + count))
        return HistoryPage(chosen, position)

    def remove(self, channel: str) -> None:
        """Drop ``channel``'s kept publications (its offset and epoch stay)."""
        state = self._channels.get(channel)
        if state is not None:
            state.entries.clear()

    def _state(self, channel: str, options: HistoryOptions, now: float) -> _Channel:
        """``channel``'s live state (a new epoch when it had none or it expired), its meta refreshed."""
        state = self._channels.get(channel)
        if state is None or state.meta_expires <= now:
            if len(self._channels) >= self._sweep_at:
                self._sweep(now)
            state = self._channels[channel] = _Channel(new_epoch(), now)
        elif state.entries and state.history_expires <= now:
            state.entries.clear()
        state.meta_expires = now + options.meta_ttl
        return state

    def _sweep(self, now: float) -> None:
        self._channels = {ch: state for ch, state in self._channels.items() if state.meta_expires > now}
        self._sweep_at = max(_SWEEP_AT, 2 * len(self._channels))
