"""The plain counters of one worker, read by the metrics at scrape time (nothing runs per scrape here)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ServerStats"]


@dataclass(slots=True)
class ServerStats:
    """Counters of one worker."""

    connections_total: int = 0
    raw_messages: int = 0
    slow_consumer_disconnects: int = 0
    #: Sockets closed with 4012: more messages than ``message_rate``/``message_burst`` allow.
    rate_limited_disconnects: int = 0
    messages_in: int = 0
    #: Packets sent to clients outside the fan-out path (responses, events); see Hub.deliveries.
    messages_out: int = 0
