"""Channel names on Redis: hubbub's channel behind the broker's prefix, and back."""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["ChannelNames"]


class ChannelNames:
    """Maps hubbub channel names to Redis channel names under ``prefix`` and back, one to one."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix.encode()

    def redis(self, channel: str) -> bytes:
        """The Redis name of ``channel``."""
        try:
            return self._prefix + channel.encode()
        except UnicodeEncodeError:  # a lone surrogate: see _not_unicode_name
            return self._prefix + _not_unicode_name(channel)

    def local(self, name: Any) -> str | None:
        """The channel a Redis name stands for; None when it is not one of this prefix's names."""
        if isinstance(name, str):
            name = name.encode()
        if not isinstance(name, bytes) or not name.startswith(self._prefix):
            return None
        rest = name[len(self._prefix) :]
        try:
            return rest.decode()
        except UnicodeDecodeError:
            pass
        tag_end = rest.find(b"}")
        if not rest.startswith(b"{") or tag_end < 0:
            return None
        try:
            return rest[tag_end + 1 :].decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return None


def _not_unicode_name(channel: str) -> bytes:
    """The Redis name of a channel whose name is not valid Unicode (it holds a lone surrogate).

    The name travels as its UTF-8 form (``surrogatepass``) behind a hash tag of its digest: a
    cluster client computes the slot of a name it has to decode, and decoding invalid UTF-8 is
    lossy, so the tag (plain ASCII) gives client and server the same slot. A valid name never
    gets the tag, and a tagged name never decodes as UTF-8, so the mapping is one to one.
    """
    raw = channel.encode("utf-8", "surrogatepass")
    return b"{" + hashlib.blake2s(raw, digest_size=6).hexdigest().encode() + b"}" + raw
