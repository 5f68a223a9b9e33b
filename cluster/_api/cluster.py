"""What the server API does on every worker: act on a user's connections, list channels, list workers.

``disconnect`` and ``unsubscribe`` are sent over the control path to every worker (this one too),
which acts on the connections of the user it has (the :class:`~hubbub.cluster._users.UserIndex`).
``channels`` is a survey: every live worker (by the node records) answers with its channels.
``info`` reads the node records.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from .._control import ControlPath, reserved
from .._nodes import NodeRegistry
from .._users import UserIndex

__all__ = ["SURVEY_TIMEOUT", "ClusterOps", "Connection"]

log = logging.getLogger("hubbub.api")

#: Seconds a survey waits for the workers to answer.
SURVEY_TIMEOUT = 3.0
#: The message of the ``#kickOut`` a connection gets when unsubscribed by the server API.
KICK_MESSAGE = "Unsubscribed by the server"


class _Link(Protocol):
    def disconnect(self, code: int, reason: str) -> None: ...


class Connection(Protocol):
    """What the operations need of one connection (a session)."""

    @property
    def id(self) -> str: ...

    @property
    def link(self) -> _Link: ...

    def kick_out(self, channel: str | None, message: str | None) -> None: ...


class ClusterOps:
    """The cross-worker operations of the server API, this worker's end."""

    def __init__(
        self,
        control: ControlPath,
        nodes: NodeRegistry,
        users: UserIndex[Any],
        channel_counts: Callable[[], list[tuple[str, int]]],
    ) -> None:
        self._control = control
        self._nodes = nodes
        self._users = users
        self._channel_counts = channel_counts
        control.on("disconnect", self._disconnect_here)
        control.on("unsubscribe", self._unsubscribe_here)
        control.on_survey("channels", self._channels_here)

    # -- asking every worker (raise BrokerUnavailable) ------------------------------------------

    async def disconnect(
        self, user: str, code: int, reason: str, client: str | None, whitelist: list[str]
    ) -> None:
        message = {"op": "disconnect", "user": user, "code": code, "reason": reason}
        await self._control.send({**message, "client": client, "whitelist": whitelist})

    async def unsubscribe(self, user: str, channel: str | None, client: str | None) -> None:
        await self._control.send({"op": "unsubscribe", "user": user, "channel": channel, "client": client})

    async def channels(self, pattern: str | None) -> dict[str, int]:
        """Active channels of the whole cluster and their subscriber counts."""
        expected = [
            record["uid"] for record in await self._nodes.nodes() if isinstance(record.get("uid"), str)
        ]
        answers = await self._control.survey("channels", {"pattern": pattern}, expected, SURVEY_TIMEOUT)
        totals: dict[str, int] = {}
        for answer in answers.values():
            if not isinstance(answer, dict):
                continue
            for channel, count in answer.items():
                if isinstance(channel, str) and isinstance(count, int):
                    totals[channel] = totals.get(channel, 0) + count
        return totals

    async def info(self) -> list[dict[str, Any]]:
        return await self._nodes.nodes()

    # -- on this worker ------------------------------------------------------------------------

    def _sessions(self, message: dict[str, Any]) -> Iterator[Connection]:
        user, client = message.get("user"), message.get("client")
        if not isinstance(user, str):
            return
        keep = message.get("whitelist")
        keep = set(keep) if isinstance(keep, list) else set()
        for session in self._users.sessions(user):
            if (client is None or session.id == client) and session.id not in keep:
                yield session

    def _disconnect_here(self, message: dict[str, Any]) -> None:
        code, reason = message.get("code"), message.get("reason")
        if not isinstance(code, int) or not isinstance(reason, str):
            return
        for session in self._sessions(message):
            session.link.disconnect(code, reason)

    def _unsubscribe_here(self, message: dict[str, Any]) -> None:
        channel = message.get("channel")
        if channel is not None and not isinstance(channel, str):
            return
        for session in self._sessions(message):
            session.kick_out(channel or None, KICK_MESSAGE)

    def _channels_here(self, params: dict[str, Any]) -> dict[str, int]:
        pattern = params.get("pattern")
        match = _matcher(pattern if isinstance(pattern, str) else None)
        return {
            channel: count
            for channel, count in self._channel_counts()
            if not reserved(channel) and (match is None or match(channel))
        }


def _matcher(pattern: str | None) -> Callable[[str], Any] | None:
    """A glob (``*`` any run, ``?`` one character, ``[...]`` a class) as a full match; None for all."""
    if not pattern:
        return None
    return re.compile(fnmatch.translate(pattern), re.DOTALL).match
