"""Codecs: how packets become WebSocket messages and back.

A codec turns a packet (a dict, or a list of dicts for a batch) into one WebSocket message and back.
``JsonCodec`` is sc-formatter's format (text frames); ``MinBinCodec`` (in :mod:`.minbin`) is
sc-codec-min-bin's MessagePack format (binary frames). Heartbeats (``""``, ``#1``, ``#2``) never pass
through a codec.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Protocol

__all__ = ["Codec", "CodecError", "JsonCodec", "get_codec"]


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


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": True, "data": base64.b64encode(value).decode("ascii")}
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default, allow_nan=False)
_decoder = json.JSONDecoder()
_JSON_START = frozenset("{[")


class JsonCodec:
    """sc-formatter: compact JSON, bytes as ``{"base64": true, "data": ...}``, raw strings passed through."""

    name = "json"
    binary = False

    def encode(self, value: Any) -> str:
        """Encode a packet or batch as compact JSON text."""
        return _encoder.encode(value)

    def decode(self, message: str | bytes) -> Any:
        """Decode JSON text; text that is not a JSON object or array is returned as the raw string."""
        if isinstance(message, bytes | bytearray | memoryview):
            try:
                message = bytes(message).decode("utf-8")
            except UnicodeDecodeError:
                return bytes(message)
        stripped = message.lstrip(" \t\r\n")
        if not stripped or stripped[0] not in _JSON_START:
            return message
        try:
            return _decoder.decode(message)
        except ValueError:
            return message


def get_codec(name: str) -> Codec:
    """The codec called ``name``: ``"json"`` or ``"minbin"``."""
    if name == "json":
        return JsonCodec()
    if name == "minbin":
        from .minbin import MinBinCodec

        return MinBinCodec()
    raise ValueError(f"unknown codec {name!r}: expected 'json' or 'minbin'")
