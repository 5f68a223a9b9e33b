"""Publishing from this worker: one way to the broker, with its failures mapped in one place."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from hubbub.broker import (
    Broker,
    BrokerUnavailable,
    ChannelRules,
    HistoryBroker,
    HistoryOptions,
    HistoryPage,
    InProcessDelivery,
    StreamPosition,
)
from hubbub.protocol import InvalidActionError

from ._broker_errors import history_failed, publish_failed

__all__ = ["Publisher"]

log = logging.getLogger("hubbub.publish")


class Publisher:
    """Takes the publications of this worker's clients and app to the broker.

    ``prepared`` is the JSON ``#publish`` packet text of ``(channel, data)`` when the caller
    already has it (a client's plain publish, as it wrote it). An in-process broker passes it to
    the hub, which sends it instead of encoding ``data`` again; a networked broker has no use for it.

    A channel that ``rules`` give history is published through the broker's history step (its
    publications get offsets); the others take the plain path, unchanged.
    """

    __slots__ = ("_broker", "_history", "_publish_now", "failures", "inline", "observer", "rules")

    def __init__(self, broker: Broker, rules: ChannelRules | None = None) -> None:
        self._broker = broker
        #: Per-channel options by name pattern (history, presence, join/leave).
        self.rules = rules if rules is not None else ChannelRules()
        self._history: HistoryBroker | None = broker if isinstance(broker, HistoryBroker) else None
        if self.rules.any_history and self._history is None:
            raise ValueError(f"channel rules give channels history, but {type(broker).__name__} keeps none")
        self._publish_now: Callable[[str, Any, str | None], None] | None = (
            broker.publish_now if isinstance(broker, InProcessDelivery) else None
        )
        #: True when :meth:`publish_inline` may be used: the broker delivers in this process.
        self.inline = self._publish_now is not None
        #: Publishes the broker refused (answered with :class:`BrokerError`).
        self.failures = 0
        #: Called with the seconds each successful publish took (set by the metrics).
        self.observer: Callable[[float], None] | None = None

    def history_options(self, channel: str) -> HistoryOptions | None:
        """The history ``channel`` keeps, None for a plain channel."""
        return self.rules.history(channel) if self.rules else None

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

    async def publish(
        self, channel: str, data: Any, *, prepared: str | None = None, skip_history: bool = False
    ) -> StreamPosition | None:
        """Publish ``data`` on ``channel``; on a channel with history, the position it was stored at.

        ``skip_history`` publishes on the plain path even on a channel with history: the
        publication is neither stored nor numbered. Raises :class:`BrokerError` when the broker cannot take it (the client learns no more; the
        details go to the log, see :mod:`._broker_errors`) and :class:`InvalidActionError` for data
        nested deeper than it can be written.
        """
        started = time.perf_counter()
        publish_now = self._publish_now
        history = self.rules.history(channel) if self.rules and not skip_history else None
        position = None
        try:
            if history is not None:
                assert self._history is not None
                position = await self._history.publish_history(channel, data, history)
            elif publish_now is not None:
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
        return position

    async def history(
        self, channel: str, *, since: int | None = None, limit: int | None = None, reverse: bool = False
    ) -> HistoryPage:
        """Read the stored publications of ``channel`` (see :meth:`hubbub.cluster.App.history`)."""
        options = self.history_options(channel)
        if options is None:
            raise ValueError(
                f"channel {channel!r} keeps no history: no channel rule with history_size matches it"
            )
        if since is not None and (type(since) is not int or since < 0):
            raise ValueError(f"since must be an offset (an int >= 0), got {since!r}")
        if limit is not None and (type(limit) is not int or limit < 0):
            raise ValueError(f"limit must be an int >= 0, got {limit!r}")
        assert self._history is not None
        try:
            return await self._history.history(channel, options, since=since, limit=limit, reverse=reverse)
        except BrokerUnavailable as error:
            raise history_failed(channel, error) from error

    async def remove_history(self, channel: str) -> None:
        """Drop the stored publications of ``channel`` (its offsets go on); BrokerError if the broker fails."""
        if self.history_options(channel) is None:
            raise ValueError(f"channel {channel!r} keeps no history")
        assert self._history is not None
        try:
            await self._history.remove_history(channel)
        except BrokerUnavailable as error:
            raise history_failed(channel, error) from error
