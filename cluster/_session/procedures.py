"""The app's events in a session: procedures answer invokes, receivers take transmits, each in its lane."""

from __future__ import annotations

import logging
from typing import Any

from hubbub.protocol import UNDEFINED, CloseCode, InvalidActionError, SCError

from .._app import Procedure, Receiver, Request
from .._app_errors import for_client, log_app_failure
from .._middleware import Action, ActionType
from .._socket import ServerSocket
from .session import Session, allowed, inbound

__all__ = ["on_invoke", "on_transmit"]

log = logging.getLogger("hubbub.socket")


async def on_invoke(
    session: Session, event: str, data: Any, cid: int | float, expired: SCError | None
) -> None:
    if session.parts.inbound_chain:
        action = Action(ActionType.INVOKE, session.handle, procedure=event, data=data)
        action.auth_token_expired_error = expired
        if not await allowed(session, cid, action):
            return
        data = action.data
    procedure = session.parts.app.procedures.get(event)
    handle = session.handle
    if procedure is None or handle is None:
        session.respond_error(cid, InvalidActionError(f"No procedure is registered for {event}"))
        return
    limit = session.parts.config.max_pending_calls
    if session.lanes.pending >= limit:
        session.respond_error(
            cid, InvalidActionError(f"Too many pending calls on this socket (limit {limit})")
        )
        return
    request = Request(handle, event, data, cid, session)
    session.lanes.enqueue("p:" + event, _run_procedure, procedure, request)


async def _run_procedure(procedure: Procedure, request: Request) -> None:
    try:
        result = await procedure(request)
    except Exception as error:
        request.error(for_client(error, f"socket {request.socket.id}: procedure {request.procedure!r}"))
    else:
        request.end(UNDEFINED if result is None else result)


async def on_transmit(session: Session, event: str, data: Any, expired: SCError | None) -> None:
    action = Action(ActionType.TRANSMIT, session.handle, receiver=event, data=data)
    action.auth_token_expired_error = expired
    if await inbound(session, action) is not None:
        return
    receiver = session.parts.app.receivers.get(event)
    if receiver is None or session.handle is None:
        return
    if session.lanes.pending >= session.parts.config.max_pending_calls:  # no reply to refuse it with
        log.info("socket %s: too many pending calls; closing it", session.id)
        session.link.disconnect(CloseCode.POLICY_VIOLATION, "Too many pending calls")
        return
    session.lanes.enqueue("r:" + event, _run_receiver, receiver, session.handle, action.data, event)


async def _run_receiver(receiver: Receiver, socket: ServerSocket, data: Any, name: str) -> None:
    try:
        await receiver(socket, data)
    except Exception as error:
        log_app_failure(error, f"socket {socket.id}: receiver {name!r}")
