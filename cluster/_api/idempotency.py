"""Idempotent publishes: a repeat of a publish with the same ``idempotency_key`` on the same channel,
within the window, is answered with the first one's result and not published again.

The result is kept in the broker's shared values, so a repeat that reaches another worker is
caught too. A publish first claims its key with a short-lived *pending* marker (so that two
concurrent repeats do not both publish), then stores its result for the whole window; a publish
that fails drops the claim, so a retry publishes. If a worker dies between its publish and storing
the result, the marker expires after :data:`PENDING_TTL` and a retry publishes again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from hubbub.broker import BrokerUnavailable, SharedValues

__all__ = ["PENDING_TTL", "Idempotency"]

log = logging.getLogger("hubbub.api")

#: Seconds a claim lives before its publish has a result (longer than any publish may take).
PENDING_TTL = 30.0
_PENDING = b"\x00pending"
#: Seconds between two looks at a key another publish holds.
_POLL = 0.02


def _key(channel: str, idempotency_key: str) -> str:
    raw = json.dumps([channel, idempotency_key]).encode("utf-8", "surrogatepass")
    return "idempotency:" + hashlib.blake2s(raw, digest_size=16).hexdigest()


class Idempotency:
    """Results of idempotent publishes in ``values`` for ``window`` seconds."""

    def __init__(self, values: SharedValues, window: float) -> None:
        self._values = values
        self.window = window

    async def once(
        self, channel: str, idempotency_key: str, publish: Callable[[], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """``publish()``'s result, published only if no publish with this key is known in the window.

        Raises what ``publish`` raises, and BrokerUnavailable when the results cannot be read.
        """
        key = _key(channel, idempotency_key)
        values = self._values
        while True:
            if await values.set_value(key, _PENDING, min(PENDING_TTL, self.window), only_new=True):
                break
            held = await values.get_value(key)
            if held is None:  # dropped or expired meanwhile: claim it again
                continue
            if held != _PENDING:
                result: dict[str, Any] = json.loads(held)
                return result
            await anyio.sleep(_POLL)
        try:
            result = await publish()
        except BaseException:
            with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
                try:
                    await values.delete_value(key)
                except BrokerUnavailable:
                    pass  # the claim expires by itself
            raise
        try:
            await values.set_value(key, json.dumps(result).encode(), self.window)
        except BrokerUnavailable as error:  # published all the same: say so, not that it failed
            log.warning("api: the result of an idempotent publish on %r was not kept: %s", channel, error)
        return result
