"""Codecs: how packets become WebSocket messages and back.

A codec turns a packet (a dict, or a list of dicts for a batch) into one WebSocket message and back.
``JsonCodec`` is sc-formatter's format (text frames); ``MinBinCodec`` (in :mod:`.minbin`) is
sc-codec-min-bin's MessagePack format (binary frames). Heartbeats (``""``, ``#1``, ``#2``) never pass
through a codec.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

__all__ = ["PUBLISH_PREFIX", "ClientPublish", "Codec", "CodecError", "JsonCodec", "get_codec"]


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


class ClientPublish(NamedTuple):
    """A client's ``#publish`` invoke, read by :meth:`JsonCodec.read_publish`."""

    channel: str
    data: Any
    cid: int
    #: The ``#publish`` packet subscribers receive: ``{"event":"#publish","data":{channel, data}}``.
    packet_text: str


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": True, "data": base64.b64encode(value).decode("ascii")}
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # JSON.parse rejects NaN and Infinity


_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default, allow_nan=False)
_decoder = json.JSONDecoder(parse_constant=_reject_constant)
#: The decoder's scanner: one JSON value at an index, as ``raw_decode`` reads it without its wrapper.
_scan_value: Callable[[str, int], tuple[Any, int]] = _decoder.scan_once  # type: ignore[attr-defined]
_JSON_START = frozenset("{[")
#: How every message :meth:`JsonCodec.read_publish` can read begins.
PUBLISH_PREFIX = '{"event":"#publish","data":{"channel":"'
_PUBLISH_VALUE_AT = len('{"event":"#publish","data":')
_PUBLISH_TAIL = re.compile(r',"cid":([1-9][0-9]{0,14})}')
_SURROGATE = re.compile("[\ud800-\udfff]")
_JS_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Infinity)")
_JS_SPACE = (  # what String.prototype.trim removes
    " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def _js_to_number(value: Any) -> float:
    """JavaScript's ``Number(value)`` for JSON-like values (NaN for anything that is not a number)."""
    if value is None or value is False:
        return 0.0
    if value is True:
        return 1.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):  # [] -> "", [x] -> String(x), longer arrays are NaN unless empty strings
        return _js_to_number(",".join("" if v is None else _js_string(v) for v in value))
    if isinstance(value, str):
        text = value.strip(_JS_SPACE)
        if not text:
            return 0.0
        if _JS_NUMBER.fullmatch(text):
            return float(text.replace("Infinity", "inf"))
        for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
            if text[:2].lower() == prefix:
                try:
                    return float(int(text[2:], base)) if text[2:].isalnum() else math.nan
                except ValueError:
                    return math.nan
    return math.nan


def _js_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join("" if v is None else _js_string(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def _to_uint8(value: Any) -> int:
    """A Uint8Array element assignment: ``ToUint8(ToNumber(value))``."""
    number = _js_to_number(value)
    if math.isnan(number) or math.isinf(number):
        return 0
    return int(number) % 256


def _replace_buffers(value: Any) -> Any:
    """sc-formatter's replacer for ``{"type": "Buffer", "data": [...]}`` (a JSON-ified Node Buffer)."""
    if isinstance(value, dict):
        data = value.get("data")
        if value.get("type") == "Buffer" and isinstance(data, list):
            raw = bytes(_to_uint8(item) for item in data)
            return {"base64": True, "data": base64.b64encode(raw).decode("ascii")}
        return {k: _replace_buffers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_buffers(v) for v in value]
    return value


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None (``JSON.stringify`` writes them as ``null``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _stringify(value: Any) -> str:
    try:
        text = _encoder.encode(value)
    except ValueError as exc:
        if "Out of range float" not in str(exc):
            raise
        text = _encoder.encode(_finite(value))
    if not text.isascii() and _SURROGATE.search(text) is not None:
        # Join surrogate pairs that were split over two code points, escape the lone ones.
        joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
        text = _SURROGATE.sub(_escape_surrogate, joined)
    return text


class JsonCodec:
    """sc-formatter: compact JSON, bytes as ``{"base64": true, "data": ...}``, raw strings passed through.

    As ``JSON.stringify`` does, NaN and infinities are written as ``null``, lone surrogates as ``\\uXXXX``
    escapes, and an object ``{"type": "Buffer", "data": [...]}`` (a JSON-ified Node Buffer) as base64. The
    strings ``#1`` and ``#2`` are passed through unencoded. Decoding rejects ``NaN``/``Infinity`` literals
    (they come back as the raw string, as ``JSON.parse`` fails on them) and reads binary frames as UTF-8
    with replacement characters.
    """

    name = "json"
    binary = False

    def encode(self, value: Any) -> str:
        """Encode a packet or batch as compact JSON text."""
        cls = value.__class__
        if cls is dict and len(value) == 1:
            rid = value.get("rid")
            if rid.__class__ is int:  # the bare acknowledgement, the most frequent packet
                return f'{{"rid":{rid}}}'
        elif cls is str and (value == "#1" or value == "#2"):
            return str(value)
        text = _stringify(value)
        if '"type":"Buffer"' in text:  # rare: only then look for JSON-ified Buffers
            text = _stringify(_replace_buffers(value))
        return text

    def read_publish(self, message: str) -> ClientPublish | None:
        """Read a ``#publish`` invoke in the form official clients send, else None.

        The form is ``{"event":"#publish","data":{"channel":C,"data":D},"cid":N}``, keys in that
        order and no others. The subscribers' packet is then the client's own text of the
        ``{"channel":C,"data":D}`` object wrapped in ``{"event":"#publish","data":...}``, so the
        payload is not encoded again; it means what the normal encoding of the decoded value
        would mean to any JSON parser. Anything else (None) takes the general path, which
        applies the codec's rules to the decoded value, and so do texts that mention ``Buffer``
        or hold ``\\u`` escapes (the encoder rewrites Node Buffers and lone surrogates).
        """
        if not message.startswith(PUBLISH_PREFIX):
            return None
        try:
            value, end = _scan_value(message, _PUBLISH_VALUE_AT)
        except (StopIteration, ValueError, RecursionError):  # what raw_decode would report as invalid
            return None
        tail = _PUBLISH_TAIL.fullmatch(message, end)
        if tail is None or value.__class__ is not dict or len(value) != 2 or "data" not in value:
            return None
        channel = value["channel"]
        if channel.__class__ is not str:
            return None
        packet_text = '{"event":"#publish","data":' + message[_PUBLISH_VALUE_AT:end] + "}"
        if "Buffer" in packet_text or "\\u" in packet_text:  # what the encoder may rewrite: let it
            return None
        return ClientPublish(channel, value["data"], int(tail.group(1)), packet_text)

    def decode(self, message: str | bytes) -> Any:
        """Decode JSON text; text that is not a JSON object or array is returned as the raw string."""
        if isinstance(message, bytes | bytearray | memoryview):
            message = bytes(message).decode("utf-8", "replace")
        stripped = message.lstrip(" \t\r\n")
        if not stripped or stripped[0] not in _JSON_START:
            return message
        try:
            return _decoder.decode(message)
        except (ValueError, RecursionError):
            return message


def get_codec(name: str) -> Codec:
    """The codec called ``name``: ``"json"`` or ``"minbin"``."""
    if name == "json":
        return JsonCodec()
    if name == "minbin":
        from .minbin import MinBinCodec

        return MinBinCodec()
    raise ValueError(f"unknown codec {name!r}: expected 'json' or 'minbin'")
