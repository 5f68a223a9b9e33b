"""The reconnect policy: which close codes reconnect, and after how long (jittered exponential backoff)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from hubbub.protocol import CloseCode, ReconnectAction, reconnect_action

__all__ = ["ReconnectOptions"]


@dataclass(frozen=True, slots=True)
class ReconnectOptions:
    """socketcluster-client's ``autoReconnectOptions``, in seconds.

    The delay before reconnect attempt ``n`` (0 for the first attempt after a successful
    connection) is ``(initial_delay + randomness * random()) * multiplier ** n``, capped at
    ``max_delay``. After a close with 4000, 4001 or 1005 the first attempt is immediate. The
    defaults are the official client's: 10 s, 10 s, 1.5, 60 s.

    Unlike the official client (which waits 10-20 s), after a close with 4011 (the server drains:
    a restart or a deploy) the first attempt comes after a uniformly random delay in
    ``[0, drain_window]``: soon, and spread so that a worker's clients do not all arrive at once.
    """

    initial_delay: float = 10.0
    randomness: float = 10.0
    multiplier: float = 1.5
    max_delay: float = 60.0
    #: The window (seconds) over which the first reconnect after a drain (close 4011) is spread.
    drain_window: float = 2.0

    def delay(self, attempt: int, code: int, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before attempt ``attempt`` after a close with ``code``; None: do not reconnect."""
        action = reconnect_action(code)
        if action is ReconnectAction.STOP:
            return None
        if action is ReconnectAction.IMMEDIATE and attempt == 0:
            return 0.0
        if code == CloseCode.SERVER_SHUTDOWN and attempt == 0:
            return (rng or random).random() * self.drain_window
        jitter = (rng or random).random() * self.randomness
        return min((self.initial_delay + jitter) * self.multiplier**attempt, self.max_delay)

    def bounds(self, attempt: int) -> tuple[float, float]:
        """The smallest and largest backoff delay for attempt ``attempt`` (useful for tests and logs)."""
        low = min(self.initial_delay * self.multiplier**attempt, self.max_delay)
        high = min((self.initial_delay + self.randomness) * self.multiplier**attempt, self.max_delay)
        return low, high
