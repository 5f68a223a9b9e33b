"""Fan-out of publications on channels with history, to subscribers that may be recovering.

A subscriber that subscribes with a position is *held* on its channel until the publications it
missed have been read from the history: live publications for it wait in its hold meanwhile. On
:meth:`PositionedFanout.release` it gets the missed ones, then those of its hold past them, and
afterwards skips live ones at or below the last it got (they may still be on their way from the
broker). Subscribers without a hold get the one shared frame, as on a plain channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._hub import Hub, Publication, Subscriber

__all__ = ["PositionedFanout"]


class _Hold:
    """Buffers a recovering subscriber's deliveries, then skips those at or below ``floor``."""

    __slots__ = ("buffer", "epoch", "floor")

    def __init__(self) -> None:
        self.buffer: list[Publication] | None = []
        self.floor = 0
        self.epoch = ""

    def admit(self, publication: Publication) -> bool:
        buffer = self.buffer
        if buffer is not None:
            buffer.append(publication)
            return False
        assert publication.offset is not None
        return publication.offset > self.floor or publication.epoch != self.epoch


class PositionedFanout:
    """Delivers positioned publications through the hub, honouring holds of recovering subscribers."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._holds: dict[str, dict[Subscriber, _Hold]] = {}

    def deliver(self, channel: str, data: Any, offset: int, epoch: str) -> None:
        """Deliver a publication that has ``offset`` in ``epoch`` to the local subscribers of ``channel``."""
        hub = self._hub
        members = hub.members(channel)
        if not members:
            return
        hub.publications += 1
        publication = Publication(channel, data, None, hub.codec, offset, epoch)
        holds = self._holds.get(channel)
        if holds is None:
            hub.send(publication, members)
            return
        admitted = []
        for subscriber in members:
            hold = holds.get(subscriber)
            if hold is None:
                admitted.append(subscriber)
            elif hold.admit(publication):
                admitted.append(subscriber)
                del holds[subscriber]  # past its floor: from now on like any other subscriber
        hub.send(publication, admitted)
        for subscriber in [s for s in holds if s not in members]:
            del holds[subscriber]
        if not holds:
            del self._holds[channel]

    def hold(self, subscriber: Subscriber, channel: str) -> None:
        """Buffer ``subscriber``'s deliveries on ``channel`` until :meth:`release`."""
        self._holds.setdefault(channel, {})[subscriber] = _Hold()

    def forget(self, channel: str) -> None:
        """Drop the holds of ``channel`` (it has no local subscriber left)."""
        self._holds.pop(channel, None)

    def release(
        self,
        subscriber: Subscriber,
        channel: str,
        replay: Sequence[Publication],
        floor: int,
        epoch: str,
        delivered: int = 0,
    ) -> None:
        """End the hold: send ``replay``, then the buffered publications past it (and past ``floor``).

        Live publications at or below ``floor`` in ``epoch`` (or the last one sent) are skipped
        afterwards, unless the channel's deliveries are already at ``delivered`` >= ``floor``
        (then none at or below it can come). A subscriber that is no longer on the channel gets nothing.
        """
        holds = self._holds.get(channel)
        hold = holds.pop(subscriber, None) if holds is not None else None
        if holds is not None and not holds:
            del self._holds[channel]
        if not self._hub.is_member(subscriber, channel):
            return
        send = self._hub.send
        for publication in replay:
            send(publication, (subscriber,))
            floor = max(floor, publication.offset or 0)
        for publication in (hold.buffer or ()) if hold is not None else ():
            assert publication.offset is not None
            if publication.offset > floor or publication.epoch != epoch:
                send(publication, (subscriber,))
                floor, epoch = publication.offset, publication.epoch
        if floor <= delivered:
            return
        after = _Hold()
        after.buffer, after.floor, after.epoch = None, floor, epoch
        self._holds.setdefault(channel, {})[subscriber] = after

    def publication(self, channel: str, data: Any, offset: int, epoch: str) -> Publication:
        """A publication to replay (read from the history)."""
        return Publication(channel, data, None, self._hub.codec, offset, epoch)
