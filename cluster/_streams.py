"""Channels with history on this worker: their publications in offset order, gaps healed.

The broker delivers a history channel's publications with their offsets, at most once: a dropped
pub/sub connection, a failover or an output-buffer limit can lose some. This worker knows the last
offset it delivered on each history channel it serves (a *stream*); a publication that arrives
after a gap waits while the missing ones are read from the history, and all are delivered in
order. After the broker reconnects, every stream is checked the same way. Subscribers of this
worker then lose nothing that the history still holds.

:meth:`ChannelStreams.read_since` serves recovering subscribers: reads of one channel asked for
within :data:`READ_WINDOW` are made as one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import anyio

from hubbub.broker import BrokerUnavailable, HistoryBroker, HistoryOptions, HistoryPage

from ._loop import Spawner
from ._positioned import PositionedFanout

__all__ = ["READ_WINDOW", "ChannelStreams", "StreamStats"]

log = logging.getLogger("hubbub.history")

#: Seconds during which recovery reads of one channel are gathered into one history read.
READ_WINDOW = 0.01


@dataclass
class StreamStats:
    """Counters of the history channels of one worker."""

    #: Publications the broker did not deliver, filled in from the history.
    healed: int = 0
    #: Publications missing from a gap that the history no longer held (delivered around).
    lost: int = 0
    #: Publications received twice (dropped the second time).
    duplicates: int = 0
    #: History reads made (gap checks and coalesced recovery reads).
    reads: int = 0
    #: Recovery reads asked for by subscribers (``reads`` counts what they cost).
    recovery_requests: int = 0
    recoveries: dict[str, int] = field(default_factory=dict)


@dataclass(eq=False)
class _Stream:
    options: HistoryOptions
    epoch: str = ""
    last: int = 0
    #: Set once the position is known; publications wait in ``queue`` until then and while healing.
    synced: anyio.Event = field(default_factory=anyio.Event)
    busy: bool = True
    failed: BaseException | None = None
    queue: list[tuple[Any, int, str]] = field(default_factory=list)


@dataclass(eq=False)
class _Read:
    options: HistoryOptions
    since: int
    started: bool = False
    done: anyio.Event = field(default_factory=anyio.Event)
    page: HistoryPage | None = None
    error: BaseException | None = None


class ChannelStreams:
    """The history channels this worker serves: order, gap healing, and coalesced recovery reads."""

    def __init__(self, broker: HistoryBroker, fanout: PositionedFanout, nursery: Spawner) -> None:
        self._broker = broker
        self._fanout = fanout
        self._nursery = nursery
        self._streams: dict[str, _Stream] = {}
        self._reads: dict[str, _Read] = {}
        self.stats = StreamStats()
        broker.attach_history(self.receive, self.reconnected)

    def position(self, channel: str) -> tuple[int, str] | None:
        """``(last offset delivered, epoch)`` of a synced stream, else None."""
        stream = self._streams.get(channel)
        if stream is None or not stream.synced.is_set():
            return None
        return stream.last, stream.epoch

    # -- from the broker ---------------------------------------------------------------------

    def receive(self, channel: str, data: Any, offset: int, epoch: str) -> None:
        """A publication from the broker (the hot path of history channels)."""
        stream = self._streams.get(channel)
        if stream is None:  # no local subscriber went through subscribe(): nothing to keep in order
            self._fanout.deliver(channel, data, offset, epoch)
            return
        if stream.busy:
            stream.queue.append((data, offset, epoch))
            return
        if epoch != stream.epoch:
            log.info("history of %r has a new epoch %r (was %r)", channel, epoch, stream.epoch)
            stream.epoch, stream.last = epoch, 0
        if offset <= stream.last:
            self.stats.duplicates += 1
        elif offset == stream.last + 1:
            stream.last = offset
            self._fanout.deliver(channel, data, offset, epoch)
        else:
            stream.busy = True
            stream.queue.append((data, offset, epoch))
            self._nursery.start_soon(self._heal, channel, stream)

    def reconnected(self) -> None:
        """The broker lost its subscriptions and has them back: check every stream for a gap."""
        for channel, stream in list(self._streams.items()):
            if not stream.busy:
                stream.busy = True
                self._nursery.start_soon(self._heal, channel, stream)

    # -- streams -----------------------------------------------------------------------------

    async def synced(self, channel: str, options: HistoryOptions) -> tuple[int, str]:
        """Start serving ``channel`` (its broker subscription must be active) and return its position.

        Raises :class:`BrokerUnavailable` when the position cannot be read.
        """
        stream = self._streams.get(channel)
        if stream is None:
            stream = self._streams[channel] = _Stream(options)
            self._nursery.start_soon(self._sync, channel, stream)
        await stream.synced.wait()
        if stream.failed is not None:
            raise BrokerUnavailable(f"cannot read the history position of {channel!r}: {stream.failed}")
        return stream.last, stream.epoch

    def forget(self, channel: str) -> None:
        """Stop serving ``channel`` (it has no local subscriber left)."""
        stream = self._streams.get(channel)
        if stream is not None and stream.synced.is_set():
            del self._streams[channel]

    async def _sync(self, channel: str, stream: _Stream) -> None:
        try:
            page = await self._read(channel, stream.options, since=None, limit=0)
        except BrokerUnavailable as error:
            stream.failed = error
            del self._streams[channel]
            stream.synced.set()
            return
        stream.last, stream.epoch = page.position.offset, page.position.epoch
        stream.synced.set()
        self._drain(channel, stream, healed=False)

    async def _heal(self, channel: str, stream: _Stream) -> None:
        """Fill the gap after ``stream.last`` from the history, then deliver what waited."""
        try:
            page = await self._read(channel, stream.options, since=stream.last, limit=None)
            if page.position.epoch != stream.epoch:  # the history was lost: read the new epoch's from 1
                stream.epoch, stream.last = page.position.epoch, 0
                page = await self._read(channel, stream.options, since=0, limit=None)
        except BrokerUnavailable as error:
            log.warning("history of %r: cannot fill a gap after offset %d: %s", channel, stream.last, error)
        else:
            arrived = {offset for _, offset, epoch in stream.queue if epoch == stream.epoch}
            for entry in page.entries:
                if entry.offset > stream.last and page.position.epoch == stream.epoch:
                    healed = entry.offset not in arrived
                    self._deliver(channel, stream, entry.data, entry.offset, stream.epoch, healed=healed)
        self._drain(channel, stream, healed=True)

    def _drain(self, channel: str, stream: _Stream, *, healed: bool) -> None:
        """Deliver the publications that waited, in offset order.

        A gap before them is filled from the history first; after that (``healed``) a gap the
        history could not fill is skipped.
        """
        queue = sorted(stream.queue, key=lambda item: item[1])
        if not healed and _has_gap(queue, stream.last, stream.epoch):
            self._nursery.start_soon(self._heal, channel, stream)
            return
        stream.queue = []
        stream.busy = False
        for data, offset, epoch in queue:
            if epoch != stream.epoch:
                stream.epoch, stream.last = epoch, offset - 1
            if offset > stream.last:
                self._deliver(channel, stream, data, offset, epoch, healed=False)

    def _deliver(
        self, channel: str, stream: _Stream, data: Any, offset: int, epoch: str, *, healed: bool
    ) -> None:
        missing = offset - stream.last - 1
        if missing > 0:
            self.stats.lost += missing
            log.warning("history of %r: %d publications before offset %d were lost", channel, missing, offset)
        if healed:
            self.stats.healed += 1
        stream.last = offset
        self._fanout.deliver(channel, data, offset, epoch)

    # -- reads -------------------------------------------------------------------------------

    async def read_since(self, channel: str, options: HistoryOptions, since: int) -> HistoryPage:
        """The history of ``channel`` after offset ``since``, read together with other recoveries."""
        self.stats.recovery_requests += 1
        read = self._reads.get(channel)
        if read is None or read.started:
            read = self._reads[channel] = _Read(options, since)
            self._nursery.start_soon(self._gathered_read, channel, read)
        read.since = min(read.since, since)
        await read.done.wait()
        if read.error is not None:
            raise BrokerUnavailable(str(read.error))
        assert read.page is not None
        entries = [entry for entry in read.page.entries if entry.offset > since]
        return HistoryPage(entries, read.page.position)

    async def _gathered_read(self, channel: str, read: _Read) -> None:
        await anyio.sleep(READ_WINDOW)
        read.started = True
        if self._reads.get(channel) is read:
            del self._reads[channel]
        try:
            read.page = await self._read(channel, read.options, since=read.since, limit=read.options.size)
        except BrokerUnavailable as error:
            read.error = error
        finally:
            read.done.set()

    async def _read(
        self, channel: str, options: HistoryOptions, *, since: int | None, limit: int | None
    ) -> HistoryPage:
        self.stats.reads += 1
        try:
            return await self._broker.history(channel, options, since=since, limit=limit)
        except BrokerUnavailable:
            raise
        except Exception as error:  # a broker bug must not kill the worker's nursery
            log.exception("history read of %r failed", channel)
            raise BrokerUnavailable(str(error)) from error


def _has_gap(queue: list[tuple[Any, int, str]], last: int, epoch: str) -> bool:
    """Whether the offsets in ``queue`` (sorted) after ``last`` in ``epoch`` skip one."""
    expected = last + 1
    for _, offset, item_epoch in queue:
        if item_epoch != epoch or offset < expected:
            continue
        if offset != expected:
            return True
        expected = offset + 1
    return False
