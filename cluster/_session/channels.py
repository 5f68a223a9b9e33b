"""The channel events of a session: ``#subscribe``, ``#unsubscribe`` and ``#publish``."""

from __future__ import annotations

import logging
from typing import Any

from hubbub.broker import BrokerUnavailable
from hubbub.protocol import BrokerError, InvalidActionError

from .._broker_errors import subscribe_failed
from .._control import reserved
from .._middleware import Action, ActionType
from .._recovery import read_recover
from .session import Session, after_publish, allowed

__all__ = ["on_publish", "on_subscribe", "on_unsubscribe"]

log = logging.getLogger("hubbub.socket")


def _channel_of(session: Session, data: Any, cid: int | float | None, what: str) -> str | None:
    """The channel named in a subscribe or publish, else None after answering with the error."""
    channel = data.get("channel") if isinstance(data, dict) else None
    if not isinstance(channel, str):
        session.reply_error(cid, InvalidActionError(f"{what} channel name was malformatted"))
        return None
    if len(channel) > session.parts.config.max_channel_name:
        limit = session.parts.config.max_channel_name
        session.reply_error(
            cid, InvalidActionError(f"Channel name is longer than the limit of {limit} characters")
        )
        return None
    if reserved(channel):
        session.reply_error(cid, InvalidActionError(f"{what} channel name is reserved for the server"))
        return None
    return channel


async def on_subscribe(session: Session, data: Any, cid: int | float | None) -> None:
    session.expire_token()
    channel = _channel_of(session, data, cid, "Subscribe")
    if channel is None:
        return
    assert isinstance(data, dict)
    parts = session.parts
    history = parts.publisher.history_options(channel) if parts.history is not None else None
    try:
        recover = read_recover(data.get("data")) if history is not None else None
    except InvalidActionError as error:
        session.reply_error(cid, error)
        return
    if session.parts.inbound_chain:
        action = Action(ActionType.SUBSCRIBE, socket=session.handle, channel=channel, data=data.get("data"))
        if not await allowed(session, cid, action):
            return
    if cid is None:  # socketcluster-server runs the middleware but does not subscribe
        return
    hub = session.parts.hub
    config = session.parts.config
    if hub.subscribers(channel) == 0 and hub.channel_count >= config.max_channels:
        session.respond_error(
            cid,
            BrokerError(
                f"Failed to subscribe socket to the {channel} channel - the worker's limit of "
                f"{config.max_channels} channels is reached"
            ),
        )
        return
    limit = config.socket_channel_limit
    if limit is not None and hub.channel_total(session) >= limit and not hub.is_member(session, channel):
        session.respond_error(
            cid,
            BrokerError(
                f"Failed to subscribe socket to the {channel} channel - InvalidActionError: "
                f"Socket {session.id} tried to exceed the channel subscription limit of {limit}"
            ),
        )
        return
    try:
        if history is not None:
            assert parts.history is not None
            subscribed = await parts.history.subscribe(session, channel, history, recover)
            session.respond(cid, subscribed.answer)
            subscribed.finish()
            return
        await hub.subscribe(session, channel)
    except Exception as error:
        if not isinstance(error, BrokerUnavailable):
            log.exception("subscribing socket %s to %r failed", session.id, channel)
        session.respond_error(cid, subscribe_failed(channel, error))
        return
    session.respond(cid)


async def on_unsubscribe(session: Session, data: Any, cid: int | float | None) -> None:
    if not isinstance(data, str):
        session.reply_error(cid, InvalidActionError("Unsubscribe channel name was malformatted"))
        return
    hub = session.parts.hub
    if not hub.is_member(session, data):
        session.reply_error(
            cid,
            BrokerError(
                f"Failed to unsubscribe socket from the {data} channel - InvalidActionError: "
                f"Socket {session.id} tried to unsubscribe from a channel which it is not subscribed to"
            ),
        )
        return
    hub.unsubscribe(session, data)
    if cid is not None:
        session.respond(cid)


async def on_publish(session: Session, data: Any, cid: int | float | None) -> None:
    expired = session.expire_token()
    if not session.parts.config.allow_client_publish:
        session.reply_error(cid, InvalidActionError("Client publish feature is disabled"))
        return
    channel = _channel_of(session, data, cid, "Publish")
    if channel is None:
        return
    assert isinstance(data, dict)
    payload = data.get("data")
    if session.parts.inbound_chain:
        action = Action(ActionType.PUBLISH_IN, session.handle, channel=channel, data=payload)
        action.auth_token_expired_error = expired
        if not await allowed(session, cid, action):
            return
        payload = action.data
    try:
        await session.parts.publisher.publish(channel, payload)
    except (BrokerError, InvalidActionError) as error:
        session.reply_error(cid, error)
        return
    if cid is not None:
        session.respond(cid)
    after_publish(session, channel)
