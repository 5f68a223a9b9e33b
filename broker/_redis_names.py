"""Names on Redis: hubbub's channel behind the broker's prefix and back, and a channel's history keys.

On a Redis Cluster a channel's history keys and its (sharded) pub/sub channel must be in one hash
slot, because one script stores and publishes. Redis hashes the *hash tag* of a name: what lies
between its first ``{`` and the first ``}`` after it, when that is not empty, else the whole name.
A key ``{T}...`` hashes ``T`` whenever ``T`` has no ``}`` and is not empty, so the keys of a channel
whose Redis name has such a tag are ``{T}`` plus a suffix. The Redis name of every channel is chosen
so that its tag is one: a name that has none (it holds a ``}`` outside a tag, or is empty) gets a
tag of its own digest, as names that are not valid Unicode already do.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["ChannelNames", "hash_tag"]

#: Follows the digest tag of a channel that is valid Unicode but has no usable hash tag; a byte
#: that UTF-8 never holds, so such a name never reads as a plain one.
_RETAGGED = b"\xff"


class ChannelNames:
    """Maps hubbub channel names to Redis channel names under ``prefix`` and back, one to one.

    Raises :class:`ValueError` for a prefix whose first ``{`` is followed directly by ``}``: every
    name under it would hash whole, so no key could share a channel's cluster slot.
    """

    def __init__(self, prefix: str) -> None:
        raw = prefix.encode()
        brace = raw.find(b"{")
        if brace >= 0 and raw[brace + 1 : brace + 2] == b"}":
            raise ValueError(f"broker prefix {prefix!r}: its first '{{' must not be followed by '}}'")
        self._prefix = raw

    def redis(self, channel: str) -> bytes:
        """The Redis name of ``channel``."""
        try:
            raw = channel.encode()
        except UnicodeEncodeError:  # a lone surrogate: see _tagged
            return self._prefix + _tagged(channel.encode("utf-8", "surrogatepass"))
        name = self._prefix + raw
        if b"}" in name or not name:
            tag = hash_tag(name)
            if not tag or b"}" in tag:
                return self._prefix + _tagged(raw, _RETAGGED)
        return name

    def local(self, name: Any) -> str | None:
        """The channel a Redis name stands for; None when it is not one of this prefix's names."""
        if isinstance(name, str):
            name = name.encode()
        if not isinstance(name, bytes) or not name.startswith(self._prefix):
            return None
        rest = name[len(self._prefix) :]
        try:
            channel = rest.decode()
        except UnicodeDecodeError:
            tag_end = rest.find(b"}")
            if not rest.startswith(b"{") or tag_end < 0:
                return None
            raw = rest[tag_end + 1 :]
            try:
                if raw.startswith(_RETAGGED):
                    channel = raw[len(_RETAGGED) :].decode()
                else:
                    channel = raw.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                return None
        else:
            if b"}" not in name and name:
                return channel  # the common case: no brace, so redis() kept the name as it is
        return channel if self.redis(channel) == name else None

    def history_keys(self, channel: str) -> tuple[bytes, bytes]:
        """``(meta, stream)``: the keys of ``channel``'s history, in the slot of its Redis name.

        ``meta`` is a hash (``e``: epoch, ``o``: last offset); ``stream`` a Redis Stream of the
        stored envelopes. A name without braces gives ``{<name>}:meta`` and ``{<name>}:history``;
        any other ``{<tag>}:meta:<name>`` and ``{<tag>}:history:<name>``. Either way distinct
        channels get distinct keys.
        """
        name = self.redis(channel)
        if b"{" not in name and b"}" not in name:
            head = b"{" + name + b"}:"
            return head + b"meta", head + b"history"
        head = b"{" + hash_tag(name) + b"}:"
        return head + b"meta:" + name, head + b"history:" + name


def hash_tag(name: bytes) -> bytes:
    """What Redis Cluster hashes of ``name``: its hash tag, or the whole name when it has none."""
    start = name.find(b"{")
    if start >= 0:
        end = name.find(b"}", start + 1)
        if end > start + 1:
            return name[start + 1 : end]
    return name


def _tagged(raw: bytes, marker: bytes = b"") -> bytes:
    """A channel's name behind a hash tag of its digest.

    For a channel that is not valid Unicode (it holds a lone surrogate), ``raw`` is its UTF-8 form
    (``surrogatepass``): a cluster client computes the slot of a name it has to decode, and
    decoding invalid UTF-8 is lossy, so the tag (plain ASCII) gives client and server the same
    slot. For a valid name with no usable hash tag, ``marker`` follows the tag. A tagged name never
    decodes as UTF-8 and a plain one always does, so the mapping is one to one.
    """
    return b"{" + hashlib.blake2s(raw, digest_size=6).hexdigest().encode() + b"}" + marker + raw
