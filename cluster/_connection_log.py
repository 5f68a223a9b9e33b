"""Connection logs: one INFO line when a socket opens and one when it closes; DEBUG frames by socket.

Both INFO lines name the socket id, the peer's address and user agent; the closing one adds the
close code and reason and how long the socket was open. The fields also go to the log record as
``record.hubbub`` (a dict), which ``--log-format json`` writes out as keys. Nothing secret is
logged: no token, key or payload (frames only at DEBUG, on the ``hubbub.frames`` logger).
"""

from __future__ import annotations

import logging
from typing import Any

from ._session.session import Session
from ._transport.asgi import AsgiLink
from ._transport.connection import WsConnection
from ._transport.link import Link, LinkState, MessageSink

__all__ = [
    "TracedAsgiLink",
    "TracedConnection",
    "asgi_link_class",
    "connection_class",
    "log_closed",
    "log_opened",
    "trace_frames",
]

log = logging.getLogger("hubbub.connections")
frames_log = logging.getLogger("hubbub.frames")

#: Longest part of a frame a DEBUG line shows.
SHOWN = 200


def _peer(session: Session) -> dict[str, Any]:
    request = session.request
    remote = request.remote_address
    return {
        "socket_id": session.id,
        "remote": f"{remote[0]}:{remote[1]}" if remote else None,
        "user_agent": request.header("User-Agent"),
    }


def log_opened(session: Session) -> None:
    """The INFO line of a socket that completed the SocketCluster handshake."""
    if not log.isEnabledFor(logging.INFO):
        return
    fields = _peer(session)
    log.info(
        "socket %s opened from %s (%s)",
        fields["socket_id"],
        fields["remote"],
        fields["user_agent"],
        extra={"hubbub": {"event": "opened", **fields}},
    )


def log_closed(session: Session, conn: Link, code: int, now: float) -> None:
    """The INFO line of a socket that was open and is now closed with ``code`` (``now``: the worker's clock)."""
    if not log.isEnabledFor(logging.INFO):
        return
    fields = _peer(session)
    duration = round(now - conn.opened_at, 3)
    reason = conn.close_reason
    log.info(
        "socket %s closed with %d%s after %.1fs (from %s, %s)",
        fields["socket_id"],
        code,
        f" {reason!r}" if reason else "",
        duration,
        fields["remote"],
        fields["user_agent"],
        extra={"hubbub": {"event": "closed", **fields, "code": code, "reason": reason, "duration": duration}},
    )


class _TracedSink:
    """A connection's sink that logs each inbound message at DEBUG first."""

    __slots__ = ("_id", "_sink")

    def __init__(self, socket_id: str, sink: MessageSink) -> None:
        self._id, self._sink = socket_id, sink

    def publish_inline(self, payload: bytes) -> bool:
        frames_log.debug("socket %s <- %r", self._id, payload[:SHOWN])
        served = self._sink.publish_inline(payload)
        if not served:  # on_message gets it next: logged once
            frames_log.debug("socket %s: not served inline", self._id)
        return served

    async def on_message(self, message: str | bytes) -> None:
        frames_log.debug("socket %s <- %r", self._id, message[:SHOWN])
        await self._sink.on_message(message)


class _FrameTracing(LinkState):
    """Logs each frame a link sends at DEBUG, tagged with its socket id (mixed into a transport's link)."""

    __slots__ = ()
    trace_id: str

    def send_frame(self, frame: bytes) -> None:
        frames_log.debug("socket %s -> %r", self.trace_id, frame[:SHOWN])
        super().send_frame(frame)

    def send_own_frame(self, frame: bytes) -> None:
        frames_log.debug("socket %s -> %r", self.trace_id, frame[:SHOWN])
        super().send_own_frame(frame)


class TracedConnection(_FrameTracing, WsConnection):
    """A connection on the worker's own port that logs each frame it sends at DEBUG."""

    __slots__ = ("trace_id",)


class TracedAsgiLink(_FrameTracing, AsgiLink):
    """A connection through an ASGI server that logs each frame it sends at DEBUG."""

    __slots__ = ("trace_id",)


def connection_class() -> type[WsConnection]:
    """:class:`TracedConnection` while ``hubbub.frames`` logs at DEBUG, else the plain connection."""
    return TracedConnection if frames_log.isEnabledFor(logging.DEBUG) else WsConnection


def asgi_link_class() -> type[AsgiLink]:
    """:class:`TracedAsgiLink` while ``hubbub.frames`` logs at DEBUG, else the plain link."""
    return TracedAsgiLink if frames_log.isEnabledFor(logging.DEBUG) else AsgiLink


def trace_frames(session: Session, conn: Link) -> None:
    """Tag a traced link's frames with its socket id and log what it receives too."""
    if isinstance(conn, _FrameTracing):
        conn.trace_id = session.id
        conn.sink = _TracedSink(session.id, conn.sink)
