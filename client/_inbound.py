"""Routes each packet from the server to the part of the client it is for.

Responses complete calls; the SocketCluster events (``#publish``, ``#kickOut``, ``#setAuthToken``,
``#removeAuthToken``) go to subscriptions and authentication; everything else goes to the user's
handlers. The server may send the two token events as transmits or as invokes (answered here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hubbub.protocol import Invoke, Packet, Response, Transmit, response_packet

from ._authenticator import Authenticator
from ._calls import CallTable
from ._events import EventHub, KickedOut
from ._handlers import Handlers, Spawn
from ._session import Session
from ._subscriptions import Subscriptions

__all__ = ["Inbound"]

_NO_TOKEN = {"message": "No token data provided by #setAuthToken event", "name": "InvalidMessageError"}


class Inbound:
    """The client's packet router (``received`` of its session hooks)."""

    def __init__(
        self,
        calls: CallTable,
        subscriptions: Subscriptions,
        auth: Authenticator,
        handlers: Handlers,
        events: EventHub,
        spawn: Spawn,
    ) -> None:
        self._calls = calls
        self._subscriptions = subscriptions
        self._handlers = handlers
        self._events = events
        self._spawn = spawn
        #: The token events; each returns False for malformed data.
        self._token_events: dict[str, Callable[[Any], bool]] = {
            "#setAuthToken": auth.on_set_token,
            "#removeAuthToken": auth.on_remove_token,
        }

    def received(self, session: Session, packet: Packet) -> None:
        """Hand ``packet`` to its recipient."""
        if isinstance(packet, Response):
            self._calls.resolve(packet)
        elif isinstance(packet, Invoke):
            self._on_invoke(session, packet)
        elif isinstance(packet, Transmit):
            self._on_transmit(packet.event, packet.data)

    def _on_transmit(self, event: str, data: Any) -> None:
        if event == "#publish":
            self._subscriptions.on_publish(data)
        elif event == "#kickOut":
            kicked = self._subscriptions.on_kick_out(data)
            if kicked is not None:
                self._events.emit(KickedOut(kicked.channel, kicked.message))
        elif event in self._token_events:
            self._token_events[event](data)
        else:
            self._handlers.on_transmit(event, data, self._spawn)

    def _on_invoke(self, session: Session, request: Invoke) -> None:
        token_event = self._token_events.get(request.event)
        if token_event is None:
            self._handlers.on_invoke(session, request, self._spawn)
        elif token_event(request.data):
            session.send(response_packet(request.cid))
        else:
            session.send(response_packet(request.cid, error=_NO_TOKEN))
