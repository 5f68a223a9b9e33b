"""Publishing from this worker: one way to the broker, with its failures mapped in one place."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from hubbub.broker import Broker, BrokerUnavailable, InProcessDelivery
from hubbub.protocol import InvalidActionError

from ._broker_errors import publish_failed

__all__ = ["Publisher"]

log = logging.getLogger("hubbub.publish")


class Publisher:
    """Takes the publications of this worker's clients and app to the broker.

    ``prepared`` is the JSON ``#publish`` packet text of ``(channel, data)`` when the caller
    already has it (a client's plain publish, as it wrote it). An in-process broker passes it to
    the hub, which sends it instead of encoding ``data`` again; a networked broker has no use for it.
    """

    __slots__ = ("_broker", "_publish_now", "failures", "inline", "observer")

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._publish_now: Callable[[str, Any, str | None], None] | None = (
            broker.publish_now if isinstance(broker, InProcessDelivery) else None
        )
        #: True when :meth:`publish_inline` may be used: the broker delivers in this process.
        self.inline = self._publish_now is not None
        #: Publishes the broker refused (answered with :class:`BrokerError`).
        self.failures = 0
        #: Called with the seconds each successful publish took (set by the metrics).
        self.observer: Callable[[float], None] | None = None

    def publish_inline(self, channel: str, data: Any, prepared: str) -> None:
        """Publish through the in-process broker without awaiting (only when :attr:`inline`)."""
        publish_now = self._publish_now
        assert publish_now is not None
        observer = self.observer
        if observer is None:
            publish_now(channel, data, prepared)
            return
        started = time.perf_counter()
        publish_now(channel, data, prepared)
        observer(time.perf_counter() - started)

    async def publish(self, channel: str, data: Any, *, prepared: str | None = None) -> None:
        """Publish ``data`` on ``channel``.

        Raises :class:`BrokerError` when the broker cannot take it (the client learns no more; the
        details go to the log, see :mod:`._broker_errors`) and :class:`InvalidActionError` for data
        nested deeper than it can be written.
        """
        started = time.perf_counter()
        publish_now = self._publish_now
        try:
            if publish_now is not None:
                publish_now(channel, data, prepared)
            else:
                await self._broker.publish(channel, data)
        except BrokerUnavailable as error:
            self.failures += 1
            raise publish_failed(channel, error) from error
        except RecursionError as error:  # deeper than the codec or the broker can write
            raise InvalidActionError(
                f"Failed to publish to the {channel} channel - data nested too deeply"
            ) from error
        if self.observer is not None:
            self.observer(time.perf_counter() - started)
