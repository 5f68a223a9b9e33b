"""Channel recovery on the client: where a subscription stands in its channel's history.

Publications on a channel with history carry an ``offset`` and an ``epoch``
(``docs/recovery-protocol.md``). Each subscription keeps the position of the last publication it
handed to its handles, drops publications at or below it (duplicates), sends it in
``data.recover`` when it subscribes again, and records what the server answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeGuard

from hubbub.broker import StreamPosition

__all__ = [
    "NOT_REQUESTED",
    "NOT_SUPPORTED",
    "NO_POSITION",
    "Publication",
    "Recovery",
    "StreamPosition",
    "check_position",
    "read_position",
    "read_publication",
    "recover_data",
]

#: ``recovery_reason`` of a resubscribe made without ``recover=True``.
NOT_REQUESTED = "recovery not requested"
#: ``recovery_reason`` when there was no position to recover from (the channel reported none).
NO_POSITION = "no position"
#: ``recovery_reason`` when the server answered a recovery request without ``recovered``.
NOT_SUPPORTED = "recovery not supported by the server for this channel"


@dataclass(frozen=True, slots=True)
class Publication:
    """One message published to a channel: ``data``, and for a channel with history its ``offset``
    and ``epoch`` (None otherwise)."""

    data: Any
    offset: int | None = None
    epoch: str | None = None

    @property
    def position(self) -> StreamPosition | None:
        """``StreamPosition(offset, epoch)``, or None for a channel without history."""
        if self.offset is None or self.epoch is None:
            return None
        return StreamPosition(self.offset, self.epoch)


def _is_offset(value: Any) -> TypeGuard[int]:
    return type(value) is int and value >= 0


def read_position(fields: Any) -> StreamPosition | None:
    """The ``{"offset", "epoch"}`` in ``fields`` (a subscribe answer), or None when absent or malformed."""
    if not isinstance(fields, dict):
        return None
    offset, epoch = fields.get("offset"), fields.get("epoch")
    if not (_is_offset(offset) and isinstance(epoch, str)):
        return None
    return StreamPosition(offset, epoch)


def read_publication(fields: dict[str, Any]) -> Publication:
    """The publication in a ``#publish`` packet's data (a malformed position is ignored)."""
    position = read_position(fields)
    if position is None:
        return Publication(fields.get("data"))
    return Publication(fields.get("data"), position.offset, position.epoch)


def check_position(position: Any, what: str) -> StreamPosition:
    """``position`` if it is a valid :class:`StreamPosition`; ``TypeError``/``ValueError`` naming ``what``."""
    if not isinstance(position, StreamPosition):
        raise TypeError(f"{what} must be a StreamPosition, got {type(position).__name__}")
    if not _is_offset(position.offset):
        raise ValueError(f"{what}: offset must be a non-negative integer, got {position.offset!r}")
    if not isinstance(position.epoch, str):
        raise ValueError(f"{what}: epoch must be a string, got {position.epoch!r}")
    return position


def _later(current: StreamPosition | None, new: StreamPosition) -> bool:
    """``new`` replaces ``current``: there is none, the epoch changed, or it is further on."""
    return current is None or current.epoch != new.epoch or new.offset > current.offset


class Recovery:
    """One subscription's position and the outcome of its resubscribes.

    ``recovered``/``reason`` are None until a resubscribe (a ``#subscribe`` after a confirmed one,
    or a first one that asked to recover from ``since``) is answered.
    """

    def __init__(self, enabled: bool, since: StreamPosition | None = None) -> None:
        self.enabled = enabled
        #: The position of the last publication handed to the handles (or told by the server).
        self.position = since
        self.recovered: bool | None = None
        self.reason: str | None = None
        #: Resubscribes answered so far.
        self.resubscriptions = 0
        self._confirmed = False
        self._asked: StreamPosition | None = None

    def request(self) -> StreamPosition | None:
        """The position to send in ``data.recover`` with the next ``#subscribe`` (None: send none)."""
        self._asked = self.position if self.enabled else None
        return self._asked

    def accept(self, publication: Publication) -> bool:
        """Whether to hand ``publication`` out (False for a duplicate); moves the position past it."""
        position = publication.position
        if position is None:
            # On a channel with a position this means the codec dropped it (min-bin does):
            # the position is lost, and recovering from the stale one would repeat publications.
            self.position = None
            return True
        if not _later(self.position, position):
            return False
        self.position = position
        return True

    def confirmed(self, answer: Any) -> bool:
        """The ``#subscribe`` was answered with ``answer`` (its data); True when it was a resubscribe."""
        asked, self._asked = self._asked, None
        resubscribe = self._confirmed or asked is not None
        self._confirmed = True
        fields = answer if isinstance(answer, dict) else {}
        recovered = fields.get("recovered")
        position = read_position(fields)
        if position is not None:
            self._take(position)
        if not resubscribe:
            return False
        self.recovered, self.reason = self._outcome(asked, recovered, fields.get("reason"))
        self.resubscriptions += 1
        return True

    def _take(self, position: StreamPosition) -> None:
        """Take the answer's position when there is none or its epoch is another; in the same epoch
        keep ours: what follows the answer (recovered or live) is after it, and must not be dropped."""
        if self.position is None or self.position.epoch != position.epoch:
            self.position = position

    def _outcome(self, asked: StreamPosition | None, recovered: Any, reason: Any) -> tuple[bool, str | None]:
        if isinstance(recovered, bool):
            return recovered, (reason if isinstance(reason, str) and not recovered else None)
        if asked is None:
            return False, NO_POSITION if self.enabled else NOT_REQUESTED
        return False, NOT_SUPPORTED


def recover_data(data: Any, position: StreamPosition) -> dict[str, Any]:
    """The subscribe ``data`` with the position under ``recover`` (``data`` is a dict or None)."""
    return {**(data or {}), "recover": {"offset": position.offset, "epoch": position.epoch}}
