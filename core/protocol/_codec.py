"""What a codec is: the :class:`Codec` interface every wire format implements, and :class:`CodecError`.

A codec turns a packet (a dict, or a list of dicts for a batch) into one WebSocket message and back.
Heartbeats (``""``, ``#1``, ``#2``) never pass through a codec.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Codec", "CodecError"]


class CodecError(ValueError):
    """A message could not be decoded (for codecs that, unlike JSON, have no raw fallback)."""


class Codec(Protocol):
    """Encodes packets to WebSocket messages and decodes them back.

    ``binary`` tells whether encoded messages go in binary frames (True) or text frames (False).
    ``decode`` never raises for JSON (undecodable text comes back as the raw string); codecs that
    cannot fall back raise :class:`CodecError`.
    """

    name: str
    binary: bool

    def encode(self, value: Any) -> str | bytes: ...

    def decode(self, message: str | bytes) -> Any: ...
