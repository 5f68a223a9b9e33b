"""The msgpack envelope every message travels in between workers (see ``docs/broker.md``).

An envelope is one msgpack map with short string keys::

    {"v": 1,            # format version (int); decoders reject versions they do not know
     "ch": "room:1",    # hubbub channel name, without the broker's prefix (str)
     "d": <payload>,    # the published data, any msgpack value (bytes stay bytes)
     "id": 42,          # publish id: per-origin sequence number (int >= 0)
     "w": "host:123:ab", # origin worker id (str)
     "t": 1718000000123, # publish time, integer milliseconds since the Unix epoch
     "o": 42,           # optional, history channels only: the offset (int >= 1) ...
     "e": "k3j9x0aB"}   # ... and the epoch (str) it was stored at; both or neither

``(w, id)`` identifies a publication uniquely. Unknown extra keys are ignored so that a later
minor revision can add optional fields without bumping ``v``.

``o`` and ``e`` are not written by the publishing worker: the history step on Redis
(``_history_script.py``) adds them to the map the worker packed (6 entries, a msgpack fixmap), in
the same atomic step that assigns the offset, so what subscribers receive and what the history
stores carry the stored position. :func:`encode` writes them when the envelope has them.

Strings that are not valid Unicode (a lone UTF-16 surrogate such as ``"\ud800"``, which JSON and
JavaScript allow) are relayed unchanged, as socketcluster-server relays them: they travel as the
UTF-8 form of the surrogate (``ed a0 80``, what Python calls ``surrogatepass``). Integers that
msgpack cannot hold (beyond 64 bits, which only JSON input can carry) travel as floats, the number
a JavaScript server would have relayed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import msgpack

__all__ = ["ENVELOPE_VERSION", "Envelope", "EnvelopeError", "decode", "encode"]

#: The envelope format version this module writes and the only one it reads.
ENVELOPE_VERSION = 1


class EnvelopeError(ValueError):
    """The bytes are not a valid envelope (not msgpack, wrong shape, or an unknown version)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message between workers; ``offset`` and ``epoch`` only on a history channel's messages."""

    channel: str
    payload: Any
    publish_id: int
    origin: str
    published_ms: int
    version: int = ENVELOPE_VERSION
    offset: int | None = None
    epoch: str | None = None

    @classmethod
    def new(cls, channel: str, payload: Any, *, publish_id: int, origin: str) -> Envelope:
        return cls(channel, payload, publish_id, origin, time.time_ns() // 1_000_000)


def encode(envelope: Envelope) -> bytes:
    """Pack ``envelope``; raises :class:`TypeError` when the payload is not msgpack-serialisable."""
    fields = {
        "v": envelope.version,
        "ch": envelope.channel,
        "d": envelope.payload,
        "id": envelope.publish_id,
        "w": envelope.origin,
        "t": envelope.published_ms,
    }
    if envelope.offset is not None or envelope.epoch is not None:
        fields["o"] = envelope.offset
        fields["e"] = envelope.epoch
    try:
        packed: bytes = msgpack.packb(fields, use_bin_type=True)
    except (UnicodeEncodeError, OverflowError):  # a lone surrogate or a huge integer: the rare slow path
        fields["d"] = _ints_as_floats(envelope.payload)
        packed = msgpack.packb(fields, use_bin_type=True, unicode_errors="surrogatepass")
    except ValueError as exc:
        if "recursion" in str(exc):  # msgpack's nesting limit, reported as Python's own
            raise RecursionError(f"publish data nested too deeply for the broker: {exc}") from exc
        raise
    return packed


_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1


def _ints_as_floats(value: Any) -> Any:
    """``value`` with every integer outside msgpack's range as a float (what JavaScript holds)."""
    if type(value) is int:
        return value if _INT64_MIN <= value <= _UINT64_MAX else float(value)
    if isinstance(value, dict):
        return {key: _ints_as_floats(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_ints_as_floats(item) for item in value]
    return value


_FIELDS: tuple[tuple[str, type], ...] = (("ch", str), ("id", int), ("w", str), ("t", int))


def decode(data: bytes) -> Envelope:
    """Unpack an envelope, raising :class:`EnvelopeError` with the reason when it is not one."""
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=False, unicode_errors="surrogatepass")
    except Exception as exc:  # msgpack raises several unrelated types (ExtraData, ValueError, ...)
        raise EnvelopeError(f"not a msgpack envelope: {exc}") from exc
    if not isinstance(obj, dict):
        raise EnvelopeError(f"envelope must be a msgpack map, got {type(obj).__name__}")
    version = obj.get("v")
    if type(version) is not int:
        raise EnvelopeError(f"envelope has no integer format version: {version!r}")
    if version != ENVELOPE_VERSION:
        raise EnvelopeError(
            f"unsupported envelope version {version} (this hubbub reads version {ENVELOPE_VERSION})"
        )
    for key, kind in _FIELDS:
        value = obj.get(key)
        if type(value) is not kind:
            raise EnvelopeError(f"envelope field {key!r} must be {kind.__name__}, got {value!r}")
    if "d" not in obj:
        raise EnvelopeError("envelope has no payload field 'd'")
    offset = obj.get("o")
    epoch = obj.get("e")
    if offset is not None or epoch is not None:
        if type(offset) is not int or offset < 1:
            raise EnvelopeError(f"envelope field 'o' must be an offset (int >= 1), got {offset!r}")
        if type(epoch) is not str:
            raise EnvelopeError(f"envelope field 'e' must be an epoch (str), got {epoch!r}")
    return Envelope(
        channel=obj["ch"],
        payload=obj["d"],
        publish_id=obj["id"],
        origin=obj["w"],
        published_ms=obj["t"],
        version=version,
        offset=offset,
        epoch=epoch,
    )
