"""The user of a connection, and this worker's index of users to their connections.

A connection's user is one claim of its auth token (``user_claim``, ``sub`` by default): a string,
or an integer taken as its decimal form. A connection without a token, or whose token lacks the
claim, has no user. The index follows every change of a connection's token.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["UserIndex", "user_of"]

S = TypeVar("S", bound=Hashable)


def user_of(token: dict[str, Any] | None, claim: str) -> str | None:
    """The user named by ``claim`` of ``token``; None when there is none."""
    if token is None:
        return None
    value = token.get(claim)
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


class UserIndex(Generic[S]):
    """user -> the connections (sessions) of this worker authenticated as that user."""

    def __init__(self, claim: str) -> None:
        self.claim = claim
        self._sessions: dict[str, dict[S, None]] = {}
        self._user_of: dict[S, str] = {}

    def __len__(self) -> int:
        """Users with at least one connection here."""
        return len(self._sessions)

    def token_changed(self, session: S, token: dict[str, Any] | None) -> None:
        """``session`` has ``token`` now (None: no token)."""
        user = user_of(token, self.claim)
        if self._user_of.get(session) == user:
            return
        self.forget(session)
        if user is not None:
            self._user_of[session] = user
            self._sessions.setdefault(user, {})[session] = None

    def forget(self, session: S) -> None:
        """``session`` ended (or lost its user)."""
        user = self._user_of.pop(session, None)
        if user is None:
            return
        sessions = self._sessions[user]
        del sessions[session]
        if not sessions:
            del self._sessions[user]

    def sessions(self, user: str) -> Iterator[S]:
        """The connections of ``user`` (a copy: the caller may close them while iterating)."""
        return iter(list(self._sessions.get(user, ())))
