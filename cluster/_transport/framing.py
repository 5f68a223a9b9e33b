"""Server-to-client WebSocket frames, serialized by websockets once per header.

An unmasked frame without extensions is its header followed by the payload, and the header depends
only on the opcode and the payload's length. websockets serializes a frame of each (opcode, length)
the first time it is needed; its header is kept and later frames of that shape are the kept header
plus the payload, without a ``Frame`` object and a ``BytesIO`` per message.
"""

from __future__ import annotations

from websockets.frames import Frame, Opcode

__all__ = ["frame_message", "frame_text"]

#: Payload lengths whose headers are kept (2-byte length field and below); longer ones are rare.
_KEPT_BELOW = 65536
_MAX_KEPT = 4096  # headers kept per opcode, so a stream of odd lengths cannot grow the cache unbounded

_text_headers: dict[int, bytes] = {}
_binary_headers: dict[int, bytes] = {}


def _header(opcode: Opcode, length: int, kept: dict[int, bytes]) -> bytes | None:
    header = kept.get(length)
    if header is None and length < _KEPT_BELOW and len(kept) < _MAX_KEPT:
        header = kept[length] = Frame(opcode, bytes(length)).serialize(mask=False)[: -length or None]
    return header


def frame_text(data: bytes) -> bytes:
    """Frame a text message that is already UTF-8 (no decode-encode round trip)."""
    header = _header(Opcode.TEXT, len(data), _text_headers)
    return header + data if header is not None else Frame(Opcode.TEXT, data).serialize(mask=False)


def frame_message(message: str | bytes) -> bytes:
    """Frame one WebSocket message as a server sends it (unmasked, no extensions)."""
    if isinstance(message, str):
        return frame_text(message.encode("utf-8"))
    header = _header(Opcode.BINARY, len(message), _binary_headers)
    return header + message if header is not None else Frame(Opcode.BINARY, message).serialize(mask=False)
