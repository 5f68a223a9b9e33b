"""Upgrade requests websockets has already read and accepted, recognised by their bytes.

Clients reconnect with the same request again and again: one library, one host, the same headers,
byte for byte, except ``Sec-WebSocket-Key``, which is random per connection. websockets parses
and checks the first such request; :class:`KnownUpgrades` keeps what came out of it (the request
as the app sees it, and the negotiated response headers) under the request's bytes with the key
left out. A later request with the same bytes is then answered from that entry after checking
only its key, which is all that differs. Anything not seen before, or with a key websockets
would refuse, goes through websockets as usual.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from dataclasses import dataclass

from websockets.utils import accept_key

from .http import HttpRequest

__all__ = ["KnownUpgrade", "KnownUpgrades"]

_KEY_LINE = b"\r\nsec-websocket-key:"


@dataclass(frozen=True, slots=True)
class KnownUpgrade:
    """What websockets made of an accepted upgrade request (the parts that do not depend on the key)."""

    url: str
    #: :attr:`HttpRequest.headers` (the key is not among them).
    headers: tuple[tuple[str, str], ...]
    #: The ``101`` response up to its ``Sec-WebSocket-Accept`` value, and what follows the value.
    response_head: bytes
    response_tail: bytes

    def request(self, remote: tuple[str, int] | None) -> HttpRequest:
        return HttpRequest(self.url, self.headers, remote)

    def response(self, key: str) -> bytes:
        return self.response_head + accept_key(key).encode() + self.response_tail


def _split_key(head: bytes) -> tuple[bytes, str] | None:
    """``head`` with its one ``Sec-WebSocket-Key`` value cut out, and that value (if websockets takes it)."""
    lowered = head.lower()
    start = lowered.find(_KEY_LINE)
    if start < 0 or lowered.find(_KEY_LINE, start + 1) >= 0:
        return None
    value_at = start + len(_KEY_LINE)
    value_end = head.find(b"\r\n", value_at)
    key = head[value_at:value_end].strip(b" \t")
    try:
        if len(b64decode(key, validate=True)) != 16:  # websockets' own test of the key
            return None
    except binascii.Error:
        return None
    return head[:value_at] + head[value_end:], key.decode("ascii")


class KnownUpgrades:
    """A bounded table of accepted upgrade requests, by their bytes without the key.

    Bounded twice: at most ``limit`` requests and ``max_bytes`` of request and response bytes in
    all (the oldest entries go first), so large request heads cannot make it hold much memory.
    """

    def __init__(self, limit: int = 256, max_bytes: int = 1 << 20) -> None:
        self._limit = limit
        self._max_bytes = max_bytes
        self._known: dict[bytes, tuple[KnownUpgrade, int]] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._known)

    @property
    def size(self) -> int:
        """Bytes of requests and responses held (what ``max_bytes`` bounds)."""
        return self._bytes

    def find(self, head: bytes) -> tuple[KnownUpgrade, str] | None:
        """The entry for the request ``head`` (through its blank line) and its key, if known."""
        split = _split_key(head)
        if split is None:
            return None
        known = self._known.get(split[0])
        return (known[0], split[1]) if known is not None else None

    def add(self, head: bytes, request: HttpRequest, response: bytes) -> None:
        """Remember an accepted request ``head`` with what it became and the ``101`` sent for it."""
        split = _split_key(head)
        if split is None:
            return
        template, key = split
        accept = accept_key(key).encode()
        at = response.find(accept)
        if at < 0:
            return
        size = 2 * len(template) + len(response)  # the template, and the headers parsed from it
        if size > self._max_bytes or template in self._known:
            return
        while self._known and (len(self._known) >= self._limit or self._bytes + size > self._max_bytes):
            oldest = next(iter(self._known))
            self._bytes -= self._known.pop(oldest)[1]
        entry = KnownUpgrade(request.url, request.headers, response[:at], response[at + len(accept) :])
        self._known[template] = (entry, size)
        self._bytes += size
