"""The history step on Redis: two Lua scripts and how to call them and read their answers.

Used by :class:`~hubbub.broker.RedisBroker`, and meant to be used unchanged by any other process
that publishes to hubbub channels with history (an emitter): the keys come from
``ChannelNames.history_keys``, the envelope from ``_envelope.encode``.

**Publish** (``KEYS``: meta, stream; ``ARGV``: Redis channel name, envelope, epoch candidate,
size, ttl ms, meta ttl ms, ``"s"`` for ``SPUBLISH`` else ``PUBLISH``), atomically:

1. read the meta hash (``e``: epoch, ``o``: last offset); when it has no epoch, take the candidate
   as the new epoch at offset 0 and delete the stream (entries of an older epoch);
2. the offset is the last one plus 1; add ``o`` and ``e`` to the envelope (a msgpack fixmap: the
   header byte grows by 2 and the two pairs are appended);
3. ``XADD`` it to the stream with the id ``<offset>-0`` (``MAXLEN = size``), then store the offset;
4. ``PEXPIRE`` the stream (ttl) and the meta (meta ttl);
5. ``PUBLISH``/``SPUBLISH`` the envelope on the channel; answer ``{offset, epoch}``.

**Read** (``KEYS``: meta, stream; ``ARGV``: epoch candidate, meta ttl ms, since, limit (``-1``: no
limit), ``"1"`` for newest first): reads (or creates) the meta, refreshes its expiry and answers
``{offset, epoch, entries}`` with the stream entries after ``since`` (``XRANGE``/``XREVRANGE`` from
``<since + 1>``, ``COUNT`` limit).

Scripts are called with ``EVALSHA`` and, when Redis answers ``NOSCRIPT``, again with ``EVAL``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ._history import HistoryOptions, StreamPosition, new_epoch

__all__ = [
    "PUBLISH",
    "READ",
    "Script",
    "publish_args",
    "read_args",
    "read_entries",
    "read_position",
]


@dataclass(frozen=True)
class Script:
    """A Lua script and its SHA1 (what ``EVALSHA`` takes)."""

    text: bytes
    sha: str

    @classmethod
    def of(cls, text: str) -> Script:
        raw = text.encode()
        return cls(raw, hashlib.sha1(raw).hexdigest())


_META = """
local meta, stream = KEYS[1], KEYS[2]
local state = redis.call('HMGET', meta, 'e', 'o')
local epoch, offset = state[1], tonumber(state[2]) or 0
if not epoch then
  epoch, offset = ARGV_EPOCH, 0
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'e', epoch, 'o', 0)
end
"""

PUBLISH = Script.of(
    _META.replace("ARGV_EPOCH", "ARGV[3]")
    + """
local envelope = ARGV[2]
local head = string.byte(envelope, 1)
if head == nil or head < 0x80 or head > 0x8d then
  return redis.error_reply('ERR hubbub history: the envelope is not a msgpack map of at most 13 entries')
end
offset = offset + 1
local message = string.char(head + 2) .. string.sub(envelope, 2) .. cmsgpack.pack('o', offset, 'e', epoch)
redis.call('XADD', stream, 'MAXLEN', ARGV[4], string.format('%d-0', offset), 'm', message)
redis.call('HSET', meta, 'o', offset)
redis.call('PEXPIRE', stream, ARGV[5])
redis.call('PEXPIRE', meta, ARGV[6])
if ARGV[7] == 's' then
  redis.call('SPUBLISH', ARGV[1], message)
else
  redis.call('PUBLISH', ARGV[1], message)
end
return {offset, epoch}
"""
)

READ = Script.of(
    _META.replace("ARGV_EPOCH", "ARGV[1]")
    + """
redis.call('PEXPIRE', meta, ARGV[2])
local limit = tonumber(ARGV[4])
local entries = {}
if limit ~= 0 then
  local first = string.format('%d-0', tonumber(ARGV[3]) + 1)
  local count = {}
  if limit > 0 then count = {'COUNT', limit} end
  if ARGV[5] == '1' then
    entries = redis.call('XREVRANGE', stream, '+', first, unpack(count))
  else
    entries = redis.call('XRANGE', stream, first, '+', unpack(count))
  end
end
return {offset, epoch, entries}
"""
)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def publish_args(name: bytes, envelope: bytes, options: HistoryOptions, *, sharded: bool) -> list[Any]:
    """``ARGV`` of :data:`PUBLISH` for ``envelope`` on the Redis channel ``name``."""
    return [
        name,
        envelope,
        new_epoch(),
        options.size,
        _ms(options.ttl),
        _ms(options.meta_ttl),
        "s" if sharded else "p",
    ]


def read_args(options: HistoryOptions, since: int | None, limit: int | None, reverse: bool) -> list[Any]:
    """``ARGV`` of :data:`READ`."""
    return [new_epoch(), _ms(options.meta_ttl), since or 0, -1 if limit is None else limit, int(reverse)]


def read_position(reply: Any) -> StreamPosition:
    """The ``{offset, epoch}`` a script answered; :class:`ValueError` when it is not one."""
    if not isinstance(reply, (list, tuple)) or len(reply) < 2:
        raise ValueError(f"history script answered {reply!r}, not an offset and an epoch")
    offset, epoch = reply[0], reply[1]
    if isinstance(epoch, bytes):
        epoch = epoch.decode("utf-8", "replace")
    if type(offset) is not int or offset < 0 or not isinstance(epoch, str):
        raise ValueError(f"history script answered {reply!r}, not an offset and an epoch")
    return StreamPosition(offset, epoch)


def read_entries(reply: Any) -> list[tuple[int, bytes]]:
    """The ``(offset, stored envelope)`` pairs of a :data:`READ` answer (after its position).

    Raises :class:`ValueError` when the answer does not have that shape.
    """
    try:
        entries = reply[2]
        return [(int(entry_id.split(b"-", 1)[0]), fields[1]) for entry_id, fields in entries]
    except (TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ValueError(f"history read answered an unexpected shape: {exc}") from None
