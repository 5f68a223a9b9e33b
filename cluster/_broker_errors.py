"""What a client is told when the broker fails, and what the log is told.

A client learns only that the broker is unavailable: the broker's address, its URL (which may hold
a password) and the internal exception text stay on the server. The details go to the log at
WARNING, at most one line per kind of failure every :data:`LOG_INTERVAL` seconds, so an outage
with thousands of failing calls does not flood it.
"""

from __future__ import annotations

import logging
import time

from hubbub.protocol import BrokerError, SCError

__all__ = ["LOG_INTERVAL", "history_failed", "publish_failed", "subscribe_failed"]

log = logging.getLogger("hubbub.broker")

#: Seconds between two log lines about the same kind of broker failure.
LOG_INTERVAL = 5.0

_last_logged: dict[str, float] = {}
_suppressed: dict[str, int] = {}


def publish_failed(channel: str, error: BaseException) -> SCError:
    """The error for a publish the broker refused; logs ``error`` (throttled)."""
    _log("publish", channel, error)
    return BrokerError(f"Failed to publish to the {channel} channel - the broker is unavailable")


def subscribe_failed(channel: str, error: BaseException) -> SCError:
    """The error for a subscription the broker refused; logs ``error`` (throttled)."""
    _log("subscribe", channel, error)
    return BrokerError(f"Failed to subscribe socket to the {channel} channel - the broker is unavailable")


def history_failed(channel: str, error: BaseException) -> SCError:
    """The error for a history read the broker could not answer; logs ``error`` (throttled)."""
    _log("history", channel, error)
    return BrokerError(f"Failed to read the history of the {channel} channel - the broker is unavailable")


def _log(action: str, channel: str, error: BaseException) -> None:
    now = time.monotonic()
    if now - _last_logged.get(action, -LOG_INTERVAL) < LOG_INTERVAL:
        _suppressed[action] = _suppressed.get(action, 0) + 1
        return
    _last_logged[action] = now
    more = _suppressed.pop(action, 0)
    log.warning(
        "broker: %s on %r failed: %s%s",
        action,
        channel,
        error,
        f" ({more} more {action} failures since the last report)" if more else "",
    )
