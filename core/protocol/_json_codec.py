"""The JSON codec: sc-formatter's format (text frames), and the fast reader of a client's ``#publish``."""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from .._js import JSON_PARSE, JSON_PARSE_LONG_INTEGERS, escape_lone_surrogates, js_to_uint8

__all__ = ["PUBLISH_PREFIX", "ClientPublish", "JsonCodec"]


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


_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default, allow_nan=False)
#: The decoder's scanner: one JSON value at an index, as ``raw_decode`` reads it without its wrapper.
_scan_value: Callable[[str, int], tuple[Any, int]] = JSON_PARSE.scan_once  # type: ignore[attr-defined]
_JSON_START = frozenset("{[")
#: How every message :meth:`JsonCodec.read_publish` can read begins.
PUBLISH_PREFIX = '{"event":"#publish","data":{"channel":"'
_PUBLISH_VALUE_AT = len('{"event":"#publish","data":')
_PUBLISH_TAIL = re.compile(r',"cid":([1-9][0-9]{0,14})}')


def _replace_buffers(value: Any) -> Any:
    """sc-formatter's replacer for ``{"type": "Buffer", "data": [...]}`` (a JSON-ified Node Buffer)."""
    if isinstance(value, dict):
        data = value.get("data")
        if value.get("type") == "Buffer" and isinstance(data, list):
            raw = bytes(js_to_uint8(item) for item in data)
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


def _stringify(value: Any) -> str:
    try:
        text = _encoder.encode(value)
    except ValueError as exc:
        if "Out of range float" not in str(exc):
            raise
        text = _encoder.encode(_finite(value))
    return text if text.isascii() else escape_lone_surrogates(text)


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
            return JSON_PARSE.decode(message)
        except ValueError as exc:
            if "integer string conversion" not in str(exc):
                return message
        except RecursionError:
            return message
        try:  # an integer of more than 4300 digits: read it as JavaScript does, as a double
            return JSON_PARSE_LONG_INTEGERS.decode(message)
        except (ValueError, RecursionError):
            return message
