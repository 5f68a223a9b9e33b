"""The inbound dispatch: which handler serves each packet, and the handshake and auth flows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from hubbub.protocol import CloseCode, Invoke, Packet, Raw, SCError, Transmit, dehydrate_error
from hubbub.protocol import Response as ResponsePacket

from .._middleware import Action, ActionType, MiddlewareLine, run_middleware
from .channels import on_publish, on_subscribe, on_unsubscribe
from .procedures import on_invoke, on_transmit
from .session import Session, inbound

__all__ = ["EVENTS", "EventHandler", "process"]

#: Serves one event: ``handler(session, data, cid)``; ``cid`` is None for a transmit.
EventHandler = Callable[[Session, Any, "int | float | None"], Awaitable[None]]


async def process(session: Session, packet: Packet) -> None:
    """Serve one inbound packet (in order: the caller awaits each before the next)."""
    if isinstance(packet, Invoke):
        await _process_event(session, packet.event, packet.data, packet.cid)
    elif isinstance(packet, Transmit):
        await _process_event(session, packet.event, packet.data, None)
    elif isinstance(packet, ResponsePacket):
        session.resolve(packet)
    elif isinstance(packet, Raw):
        session.parts.stats.raw_messages += 1


async def _process_event(session: Session, event: str, data: Any, cid: int | float | None) -> None:
    handler = EVENTS.get(event)
    if handler is not None:
        await handler(session, data, cid)
        return
    expired = session.expire_token()
    if cid is None:
        await on_transmit(session, event, data, expired)
    else:
        await on_invoke(session, event, data, cid, expired)


def _is_bad_token(error: BaseException) -> bool:
    return bool(isinstance(error, SCError) and error.fields.get("isBadToken"))


async def on_handshake(session: Session, data: Any, cid: int | float | None) -> None:
    if cid is None:  # only reachable after the handshake: the strict rule covers the first one
        session.link.disconnect(CloseCode.HANDSHAKE_REJECTED)
        return
    signed = data.get("authToken") if isinstance(data, dict) else None
    token, auth_error = (None, None) if signed is None else await _verify(session, signed)
    chain = session.parts.app.middleware_chains[MiddlewareLine.HANDSHAKE]
    blocked = None
    if chain:
        action = Action(
            ActionType.HANDSHAKE_SC,
            socket=session.handle,
            request=session.request,
            data={
                "signedAuthToken": signed,
                "authTokenError": auth_error,
                "authToken": token,
                "authState": "authenticated" if token is not None else "unauthenticated",
            },
        )
        blocked = await run_middleware(chain, action)
    if blocked is not None:
        _reject_handshake(session, cid, blocked)
        return
    # As socketcluster-server: every handshake sets the auth state anew, so a later handshake
    # with no token, or a bad one, leaves the socket unauthenticated, as the reply says.
    session.set_token(token, signed if token is not None else None)
    first = session.open()
    reply: dict[str, Any] = {"id": session.id, "pingTimeout": round(session.parts.config.ping_timeout * 1000)}
    if auth_error is not None:
        reply["authError"] = dehydrate_error(auth_error)
    reply["isAuthenticated"] = token is not None
    session.respond(cid, reply)
    if auth_error is not None and _is_bad_token(auth_error):
        session.transmit("#removeAuthToken")
    if first:
        session.parts.opened(session)


def _reject_handshake(session: Session, cid: int | float, blocked: BaseException) -> None:
    wire = dehydrate_error(blocked)
    code = getattr(blocked, "status_code", None)
    if isinstance(blocked, SCError):
        code = blocked.fields.get("statusCode", code)
    code = code if isinstance(code, int) else CloseCode.HANDSHAKE_REJECTED
    if isinstance(wire, dict):
        wire["statusCode"] = code
    session.respond_error(cid, wire)
    session.link.disconnect(code)


async def _verify(session: Session, signed: Any) -> tuple[dict[str, Any] | None, BaseException | None]:
    """Verify a presented token and run the ``authenticate`` middleware on it."""
    try:
        token = session.parts.auth.verify(signed)
    except SCError as error:
        return None, error
    action = Action(
        ActionType.AUTHENTICATE, socket=session.handle, signed_auth_token=signed, auth_token=token
    )
    blocked = await inbound(session, action)
    return (None, blocked) if blocked is not None else (token, None)


async def on_authenticate(session: Session, data: Any, cid: int | float | None) -> None:
    if cid is None:
        session.link.disconnect(CloseCode.HANDSHAKE_REJECTED)
        return
    token, error = await _verify(session, data)
    if error is None:
        session.set_token(token, data)
        session.respond(cid, {"isAuthenticated": True, "authError": None})
    elif _is_bad_token(error):
        session.set_token(None, None)
        session.respond_error(cid, error)
        session.transmit("#removeAuthToken")
    else:
        authenticated = session.auth_token is not None
        session.respond(cid, {"isAuthenticated": authenticated, "authError": dehydrate_error(error)})


async def on_remove_auth_token(session: Session, data: Any, cid: int | float | None) -> None:
    session.set_token(None, None)
    if cid is not None:
        session.respond(cid)


#: The events of SocketCluster's own protocol; any other event is an app procedure or receiver.
EVENTS: dict[str, EventHandler] = {
    "#handshake": on_handshake,
    "#authenticate": on_authenticate,
    "#removeAuthToken": on_remove_auth_token,
    "#subscribe": on_subscribe,
    "#unsubscribe": on_unsubscribe,
    "#publish": on_publish,
}
