"""The client's authentication: its state and token, changed by handshakes, the server and the user.

The token store keeps the signed token between connections; a failing store is logged, not fatal
(as in the JS client). Every change emits :class:`AuthStateChanged`/:class:`TokenChanged`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio.lowlevel

from hubbub.protocol import SCError, hydrate_error, transmit_packet

from ._auth import AuthState, TokenStore, token_payload
from ._buffer import Notifier
from ._calls import CallTable
from ._errors import RemoteError
from ._events import AuthStateChanged, EventHub, TokenChanged
from ._session import SessionLink

__all__ = ["Authenticator"]

log = logging.getLogger("hubbub.client")


class Authenticator:
    """Tracks the auth state and token; ``on_authenticated`` runs each time the client becomes authenticated."""

    def __init__(
        self,
        store: TokenStore,
        link: SessionLink,
        calls: CallTable,
        events: EventHub,
        notifier: Notifier,
        on_authenticated: Callable[[], None],
    ) -> None:
        self.store = store
        self._link = link
        self._calls = calls
        self._events = events
        self._notifier = notifier
        self._on_authenticated = on_authenticated
        self.state = AuthState.UNAUTHENTICATED
        #: The signed token the connection is authenticated with.
        self.token: str | None = None

    @property
    def is_authenticated(self) -> bool:
        """The state is ``AUTHENTICATED``."""
        return self.state is AuthState.AUTHENTICATED

    def load_token(self) -> str | None:
        """The stored token to send with a handshake (None when the store fails)."""
        try:
            return self.store.load()
        except OSError:
            log.exception("the token store failed; connecting without a token")
            return None

    def on_handshake(self, is_authenticated: bool, token: str | None) -> None:
        """A handshake succeeded; authenticated with ``token`` when the server accepted it."""
        if is_authenticated and token is not None:
            self._become_authenticated(token)
        else:
            self._become_unauthenticated()

    async def authenticate(self, token: str) -> None:
        """``#authenticate`` with ``token``; on success store it. Raises :class:`RemoteError` when refused."""
        try:
            status = await self._calls.request("#authenticate", token)
        except RemoteError:
            self._become_unauthenticated()
            raise
        auth_error = status.get("authError") if isinstance(status, dict) else None
        if isinstance(status, dict) and status.get("isAuthenticated"):
            self._store(token)
            self._become_authenticated(token)
            return
        self._become_unauthenticated()
        raise RemoteError.from_sc(
            hydrate_error(auth_error) or SCError("authentication failed", "AuthTokenError")
        )

    async def deauthenticate(self) -> None:
        """Forget the token and send ``#removeAuthToken`` when connected."""
        await anyio.lowlevel.checkpoint()
        self._store(None)
        session = self._link.session
        if session is not None:
            session.send(transmit_packet("#removeAuthToken"))
        self._become_unauthenticated()

    def on_set_token(self, data: Any) -> bool:
        """The server sent ``#setAuthToken``; False (and nothing done) when it carries no token."""
        if not (isinstance(data, dict) and isinstance(data.get("token"), str)):
            return False
        self._store(data["token"])
        self._become_authenticated(data["token"])
        return True

    def on_remove_token(self, data: Any) -> bool:
        """The server sent ``#removeAuthToken`` (always valid)."""
        self._store(None)
        if self.state is AuthState.UNAUTHENTICATED:
            self._events.emit(TokenChanged(None, None))  # a refused handshake token
        self._become_unauthenticated()
        return True

    def _store(self, token: str | None) -> None:
        """Save (or with None clear) the token."""
        try:
            if token is None:
                self.store.clear()
            else:
                self.store.save(token)
        except OSError:
            log.exception("the token store failed")

    def _become_authenticated(self, token: str) -> None:
        old = self.state
        self.token = token
        self.state = AuthState.AUTHENTICATED
        payload = token_payload(token)
        if old is not AuthState.AUTHENTICATED:
            self._events.emit(AuthStateChanged(old, AuthState.AUTHENTICATED, token, payload))
            self._on_authenticated()
        self._events.emit(TokenChanged(token, payload))
        self._notifier.notify()

    def _become_unauthenticated(self) -> None:
        old = self.state
        self.token = None
        self.state = AuthState.UNAUTHENTICATED
        if old is not AuthState.UNAUTHENTICATED:
            self._events.emit(AuthStateChanged(old, AuthState.UNAUTHENTICATED, None, None))
            self._events.emit(TokenChanged(None, None))
            self._notifier.notify()
