"""Flood protection: a token bucket per connection on the messages a client sends.

A connection starts with ``burst`` tokens; every message takes one, and tokens come back at
``rate`` per second up to ``burst``. The read loop refills once per read (it already takes the
time for the pong timer) and spends one token per message: a message with no token left closes
the connection with 4012 (``CloseCode.RATE_LIMITED``). Heartbeats count as messages too.
"""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """Messages a connection may still send now; refilled at ``rate`` per second up to ``burst``."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    @classmethod
    def for_limits(cls, rate: float, burst: int, now: float) -> TokenBucket | None:
        """A full bucket, or None when ``rate`` is 0 (no limit)."""
        return cls(rate, max(burst, 1), now) if rate > 0 else None

    def refill(self, now: float) -> None:
        tokens = self.tokens + (now - self.stamp) * self.rate
        self.tokens = tokens if tokens < self.burst else self.burst
        self.stamp = now

    def spend(self) -> bool:
        """Take a token for one message; True when there was none (the sender is over its limit)."""
        self.tokens -= 1
        return self.tokens < 0
