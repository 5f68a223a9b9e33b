"""Packet types of the SocketCluster protocol and the functions that read and build them.

A decoded message is one packet or a batch (a list of packets). :func:`read_packets` turns a decoded
message into typed packets; the ``*_packet`` builders make the dicts a codec encodes, with the key
order the official peers use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "UNDEFINED",
    "Invoke",
    "Packet",
    "Raw",
    "Response",
    "Transmit",
    "client_invoke_packet",
    "is_number",
    "read_packets",
    "response_packet",
    "server_invoke_packet",
    "transmit_packet",
]


@dataclass(frozen=True, slots=True)
class Transmit:
    """An event with no reply expected (``{"event", "data"}``, no numeric ``cid``)."""

    event: str
    data: Any = None


@dataclass(frozen=True, slots=True)
class Invoke:
    """A request: an event with a numeric ``cid``; the peer answers with ``rid == cid``."""

    event: str
    data: Any
    cid: int | float


@dataclass(frozen=True, slots=True)
class Response:
    """The answer to an :class:`Invoke`: ``error`` is None on success."""

    rid: int | float
    data: Any = None
    error: Any = None


@dataclass(frozen=True, slots=True)
class Raw:
    """Anything that is neither an event nor a response (the official peers emit it as ``raw``)."""

    value: Any


Packet = Transmit | Invoke | Response | Raw


def is_number(value: object) -> bool:
    """JavaScript's ``typeof value === 'number'`` (bools are not numbers)."""
    return (type(value) is int) or (type(value) is float)


def _read_one(obj: Any) -> Packet:
    if type(obj) is dict:
        event = obj.get("event")
        if type(event) is str:
            cid = obj.get("cid")
            if type(cid) is int or type(cid) is float:
                return Invoke(event, obj.get("data"), cid)
            return Transmit(event, obj.get("data"))
        rid = obj.get("rid")
        if type(rid) is int or type(rid) is float:
            return Response(rid, obj.get("data"), obj.get("error"))
    return Raw(obj)


def read_packets(decoded: Any) -> list[Packet]:
    """The packets in a decoded message: one for a single packet, one per element for a batch."""
    if type(decoded) is list:
        return [_read_one(item) for item in decoded]
    return [_read_one(decoded)]


def transmit_packet(event: str, data: Any = None) -> dict[str, Any]:
    """``{"event", "data"}``; ``data`` is left out when it is None, as JSON drops ``undefined``."""
    if data is None:
        return {"event": event}
    return {"event": event, "data": data}


def client_invoke_packet(event: str, data: Any, cid: int) -> dict[str, Any]:
    """A client request, key order ``event, data, cid`` (as socketcluster-client sends it)."""
    if data is None:
        return {"event": event, "cid": cid}
    return {"event": event, "data": data, "cid": cid}


def server_invoke_packet(event: str, data: Any, cid: int) -> dict[str, Any]:
    """A server request, key order ``event, cid, data`` (as socketcluster-server sends it)."""
    if data is None:
        return {"event": event, "cid": cid}
    return {"event": event, "cid": cid, "data": data}


class _Undefined:
    """JavaScript's ``undefined``: a member that is left out, unlike ``None`` (``null``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDEFINED"


#: Pass as ``data`` to leave the member out of the packet (``req.end()`` rather than ``req.end(null)``).
UNDEFINED: Any = _Undefined()


def response_packet(rid: int | float, data: Any = UNDEFINED, error: Any = None) -> dict[str, Any]:
    """``{"rid"}`` plus ``error`` (already dehydrated) when given, else ``data`` unless :data:`UNDEFINED`."""
    packet: dict[str, Any] = {"rid": rid}
    if error is not None:
        packet["error"] = error
    elif data is not UNDEFINED:
        packet["data"] = data
    return packet
