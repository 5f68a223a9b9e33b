"""sc-codec-min-bin 3.0: MessagePack packets with the ``e``/``p``/``r`` envelopes (binary frames).

The official codec is msgpack-lite (``binarraybuffer: true, preset: false``) after a "compression" step
that folds each packet into a positional array:

* ``{"event": "#publish", "data": {"channel", "data"}, "cid"?}`` -> ``{"p": [channel, data(, cid)]}``.
  A ``#publish`` whose data has more members (a history channel's ``offset`` and ``epoch``, see
  ``docs/recovery-protocol.md``) takes the ``e`` envelope instead, which keeps them; sc-codec-min-bin
  decodes both to the same packet (it would drop the extra members from a ``p``).
* ``{"event", "data", "cid"?}`` -> ``{"e": [event, data(, cid)]}`` (a missing ``data`` is written as nil)
* ``{"rid", "error"?, "data"?}`` -> ``{"r": [rid, error, data]}``

applied to a top-level packet or to each element of a top-level list (a batch). Decoding reverses it.

Byte-exact details of msgpack-lite that :class:`MinBinCodec` reproduces:

* JavaScript has one number type: a number that is an integer in ``[-2**31, 2**31)`` is written as
  a msgpack int (so ``1.0`` and ``-0.0`` are ints too), every other number as float64 (``cb``),
  including bigger ints and NaN (written as ``7ff8000000000000``).
* ``bytes``/``bytearray``/``memoryview`` are ArrayBuffers: msgpack ``bin``; ``bin`` decodes to ``bytes``.
  A 255-byte ``bin`` (or ext) uses the 16-bit header, as msgpack-lite does (``< 0xFF`` for the 8-bit one).
* Strings are UTF-8 the way Node writes them: a lone surrogate becomes U+FFFD.
* Decoding reads one value and ignores trailing bytes; invalid UTF-8 in a string is decoded with
  msgpack-lite's lenient decoder instead of failing. A top-level nil (or a nil batch element) makes
  sc-codec-min-bin throw, so it raises :class:`CodecError` here.

Encoding first packs with ``msgpack`` in C. Only when the output contains a type byte that could need one of
the rules above (float64, uint32, 64-bit ints, 8-bit bin/ext headers) is the value walked in Python to apply
them, and only a 255-byte bin/ext, a non-str map key or a lone surrogate needs the pure-Python writer.
"""

from __future__ import annotations

import math
import re
import struct
from typing import Any, Final

import msgpack

from ._codec import CodecError

__all__ = ["MinBinCodec"]

_INT32_MIN: Final = -(1 << 31)
_INT32_END: Final = 1 << 31

_packer = msgpack.Packer(use_bin_type=True)
_pack = _packer.pack
_NIL: Final = b"\xc0"
_NAN: Final = b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"
_double = struct.Struct(">Bd").pack

#: Type bytes of msgpack output that may need the exact rules: float64, uint32, uint64, int64, bin8, ext8.
#: When none occurs (ASCII text, small ints, no floats or binaries) the C packer's output is final. The
#: same bytes inside strings, binaries or number payloads only cost a walk over the value.
_SUSPECT: Final = frozenset(b"\xcb\xce\xcf\xd3\xc4\xc7")
_NOT_SUSPECT: Final = bytes(b for b in range(256) if b not in _SUSPECT)
_CANONICAL_NAN: Final = math.nan


# --- packet compression (sc-codec-min-bin) ------------------------------------------------------------


def _is_array(value: Any) -> bool:
    """Lists and tuples are JS arrays (an ``ExtType`` is a tuple too, but not an array)."""
    return isinstance(value, list) or (isinstance(value, tuple) and not isinstance(value, msgpack.ExtType))


def _js_own_props(value: Any) -> dict[Any, Any]:
    """``clonePacket``: a JS ``for...in`` copy of a batch element that is not an object."""
    if isinstance(value, dict):
        return dict(value)
    if _is_array(value):
        return {str(i): item for i, item in enumerate(value)}
    if isinstance(value, str):
        units = value.encode("utf-16-le", "surrogatepass")
        return {
            str(i): units[2 * i : 2 * i + 2].decode("utf-16-le", "surrogatepass")
            for i in range(len(units) // 2)
        }
    return {}


def _publish_extras(data: Any) -> bool:
    """A ``#publish`` data object with members the ``p`` envelope would drop (``offset``, ``epoch``)."""
    return isinstance(data, dict) and any(key != "channel" and key != "data" for key in data)


def _compress(packet: Any) -> dict[Any, Any]:
    """``compressSinglePacket``: copy the packet and fold its envelope into ``p``, ``e`` or ``r``."""
    obj = dict(packet) if type(packet) is dict else _js_own_props(packet)
    event = obj.get("event")
    if event is not None:
        data = obj.get("data")
        if event == "#publish" and data is not None and not _publish_extras(data):
            key = "p"
            arr = [data.get("channel"), data.get("data")] if isinstance(data, dict) else [None, None]
        else:
            key, arr = "e", [event, data]
        cid = obj.pop("cid", None)
        if cid is not None:
            arr.append(cid)
        obj[key] = arr
        del obj["event"]
        obj.pop("data", None)
    if obj.get("rid") is not None:
        obj["r"] = [obj.pop("rid"), obj.pop("error", None), obj.pop("data", None)]
    return obj


def _js_index(value: Any, index: int) -> Any:
    """``value[index]`` as JavaScript reads it (``undefined`` -> None)."""
    if isinstance(value, list):
        return value[index] if index < len(value) else None
    if isinstance(value, dict):
        return value.get(str(index))
    if isinstance(value, str):
        units = value.encode("utf-16-le", "surrogatepass")
        unit = units[2 * index : 2 * index + 2]
        return unit.decode("utf-16-le", "surrogatepass") if unit else None
    return None


def _decompress(obj: Any) -> Any:
    """``decompressSinglePacket``, in place (JS semantics, including for odd shapes)."""
    if obj is None:
        raise CodecError("min-bin packet is nil")
    if type(obj) is not dict:
        return obj
    e = obj.get("e")
    if e is not None:
        obj["event"] = _js_index(e, 0)
        obj["data"] = _js_index(e, 1)
        cid = _js_index(e, 2)
        if cid is not None:
            obj["cid"] = cid
        del obj["e"]
    p = obj.get("p")
    if p is not None:
        obj["event"] = "#publish"
        obj["data"] = {"channel": _js_index(p, 0), "data": _js_index(p, 1)}
        cid = _js_index(p, 2)
        if cid is not None:
            obj["cid"] = cid
        del obj["p"]
    r = obj.get("r")
    if r is not None:
        obj["rid"] = _js_index(r, 0)
        obj["error"] = _js_index(r, 1)
        obj["data"] = _js_index(r, 2)
        del obj["r"]
    return obj


# --- the exact (slow) msgpack-lite writer ---------------------------------------------------------------


def _node_str(value: str) -> str:
    """The string Node's UTF-8 writer encodes: surrogate pairs joined, lone surrogates as U+FFFD."""
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _write_number(value: float, out: bytearray) -> None:
    if value.is_integer() and _INT32_MIN <= value < _INT32_END:
        out += _pack(int(value))
    elif value != value:
        out += _NAN
    else:
        out += _double(0xCB, value)


def _bin_header(length: int, out: bytearray) -> None:
    if length < 0xFF:
        out += b"\xc4" + length.to_bytes(1, "big")
    elif length <= 0xFFFF:
        out += b"\xc5" + length.to_bytes(2, "big")
    else:
        out += b"\xc6" + length.to_bytes(4, "big")


_FIXEXT: Final = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}


def _write_ext(code: int, data: bytes, out: bytearray) -> None:
    length = len(data)
    fixed = _FIXEXT.get(length)
    if fixed is not None:
        out.append(fixed)
    elif length < 0xFF:
        out += b"\xc7" + length.to_bytes(1, "big")
    elif length <= 0xFFFF:
        out += b"\xc8" + length.to_bytes(2, "big")
    else:
        out += b"\xc9" + length.to_bytes(4, "big")
    out += (code & 0xFF).to_bytes(1, "big") + data


def _write(value: Any, out: bytearray) -> None:
    """Append ``value`` as msgpack-lite (binarraybuffer, preset false) writes the equivalent JS value."""
    if value is None or value is True or value is False:
        out += _pack(value)
    elif isinstance(value, str):
        try:
            out += _pack(value)
        except UnicodeEncodeError:
            out += _pack(_node_str(value))
    elif isinstance(value, int):
        if _INT32_MIN <= value < _INT32_END:
            out += _pack(int(value))
        else:
            try:
                out += _double(0xCB, float(value))
            except OverflowError:
                out += _double(0xCB, math.inf if value > 0 else -math.inf)
    elif isinstance(value, float):
        _write_number(float(value), out)
    elif isinstance(value, dict):
        out += _packer.pack_map_header(len(value))
        for key, item in value.items():
            _write(key, out)
            _write(item, out)
    elif _is_array(value):
        out += _packer.pack_array_header(len(value))
        for item in value:
            _write(item, out)
    elif isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        _bin_header(len(data), out)
        out += data
    elif isinstance(value, msgpack.ExtType):
        _write_ext(value.code, value.data, out)
    elif isinstance(value, msgpack.Timestamp):
        _write_ext(-1, value.to_bytes(), out)
    else:
        out += _pack(value)  # raises TypeError for unsupported types


class _NeedsExact(Exception):
    """The value has something only the exact writer handles (255-byte bin/ext, a non-str map key)."""


def _normalize_number(value: Any) -> Any:
    if isinstance(value, float):
        if value.is_integer() and _INT32_MIN <= value < _INT32_END:
            return int(value)
        if value != value:
            return _CANONICAL_NAN
        return value
    if _INT32_MIN <= value < _INT32_END:
        return value
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _normalize(value: Any) -> Any:
    """``value`` with msgpack-lite's number rules applied (the same object when nothing changes)."""
    t = type(value)
    if t is dict or (t is not list and isinstance(value, dict)):
        new: Any = None
        for key, item in value.items():
            ti = type(item)
            if not (
                ti is str or item is None or ti is bool or (ti is int and _INT32_MIN <= item < _INT32_END)
            ):
                fixed = _normalize(item)
                if fixed is not item:
                    if new is None:
                        new = dict(value)
                    new[key] = fixed
            if type(key) is not str:
                raise _NeedsExact
        return value if new is None else new
    if t is list or _is_array(value):
        new = None
        for index, item in enumerate(value):
            ti = type(item)
            if ti is str or item is None or ti is bool or (ti is int and _INT32_MIN <= item < _INT32_END):
                continue
            fixed = _normalize(item)
            if fixed is not item:
                if new is None:
                    new = list(value)
                new[index] = fixed
        return value if new is None else new
    if t is str or t is bool or value is None:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _normalize_number(value)
    if isinstance(value, bytes | bytearray | memoryview):
        if (len(value) if t is bytes else memoryview(value).nbytes) == 0xFF:
            raise _NeedsExact
        return value
    if isinstance(value, msgpack.ExtType) and len(value.data) == 0xFF:
        raise _NeedsExact
    return value


def pack_exact(value: Any) -> bytes:
    """Pack ``value`` (already compressed) with the pure-Python msgpack-lite writer."""
    out = bytearray()
    _write(value, out)
    return bytes(out)


# --- lenient string decoding (msgpack-lite's buffer-lite toString) ------------------------------------


def _lenient_utf8(data: bytes) -> str:
    """msgpack-lite's own UTF-8 reader: no validation, never fails (what it gives for invalid input)."""
    units: list[int] = []
    i, end = 0, len(data)

    def byte(at: int) -> int:
        # msgpack-lite reads a truncated sequence on into the bytes after the string (or `undefined`, 0
        # after masking, at the end of the message); those bytes are not known here, so this uses 0.
        return data[at] if at < end else 0

    while i < end:
        c = data[i]
        i += 1
        if c < 0x80:
            units.append(c)
            continue
        if c & 0xE0 == 0xC0:
            c = (c & 0x1F) << 6 | (byte(i) & 0x3F)
            i += 1
        elif c & 0xF0 == 0xE0:
            c = (c & 0x0F) << 12 | (byte(i) & 0x3F) << 6 | (byte(i + 1) & 0x3F)
            i += 2
        elif c & 0xF8 == 0xF0:
            c = (c & 0x07) << 18 | (byte(i) & 0x3F) << 12 | (byte(i + 1) & 0x3F) << 6 | (byte(i + 2) & 0x3F)
            i += 3
        if c >= 0x10000:
            c -= 0x10000
            units += ((c >> 10) + 0xD800) & 0xFFFF, (c & 0x3FF) + 0xDC00
        else:
            units.append(c)
    return b"".join(u.to_bytes(2, "little") for u in units).decode("utf-16-le", "surrogatepass")


_ESCAPED = re.compile("[\udc80-\udcff]")


def _fix_str(value: str) -> str:
    if _ESCAPED.search(value) is None:
        return value
    return _lenient_utf8(value.encode("utf-8", "surrogateescape"))


def _fix_strings(value: Any) -> Any:
    """Redo strings decoded with ``surrogateescape`` with msgpack-lite's lenient reader."""
    if isinstance(value, str):
        return _fix_str(value)
    if isinstance(value, list):
        return [_fix_strings(item) for item in value]
    if isinstance(value, dict):
        return {_fix_strings(k): _fix_strings(v) for k, v in value.items()}
    return value


def _unpack(message: bytes, **options: Any) -> Any:
    try:
        return msgpack.unpackb(message, raw=False, strict_map_key=False, **options)
    except msgpack.ExtraData as extra:  # msgpack-lite reads one value and ignores the rest
        return extra.unpacked


class MinBinCodec:
    """MessagePack codec, byte-compatible with sc-codec-min-bin 3.0.0 (binary frames)."""

    name = "minbin"
    binary = True

    def encode(self, value: Any) -> bytes:
        """Compress the packet (or each packet of a batch) and pack it as msgpack-lite does."""
        if type(value) is dict:
            if value.get("event") is not None or value.get("rid") is not None:
                value = _compress(value)
        elif _is_array(value):
            value = [_compress(item) for item in value]
        elif isinstance(value, dict) and (value.get("event") is not None or value.get("rid") is not None):
            value = _compress(value)
        try:
            out: bytes = _pack(value)
        except (OverflowError, UnicodeEncodeError):
            return pack_exact(value)
        if not out.translate(None, _NOT_SUSPECT):
            return out
        try:
            fixed = _normalize(value)
            if fixed is value:
                return out
            out = _pack(fixed)
            return out
        except (_NeedsExact, OverflowError, UnicodeEncodeError):
            return pack_exact(value)

    def decode(self, message: str | bytes) -> Any:
        """Unpack a binary message and expand the ``e``/``p``/``r`` envelopes; raises :class:`CodecError`."""
        if isinstance(message, str):
            raise CodecError("min-bin messages must be binary frames")
        try:
            obj = _unpack(message)
        except UnicodeDecodeError:
            try:
                obj = _fix_strings(_unpack(message, unicode_errors="surrogateescape"))
            except Exception as exc:
                raise CodecError(f"invalid min-bin message: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            raise CodecError(f"invalid min-bin message: {type(exc).__name__}: {exc}") from exc
        if type(obj) is list:
            for item in obj:
                _decompress(item)
            return obj
        return _decompress(obj)
