"""History reads on Redis: the read script on the current session, its answer as a page."""

from __future__ import annotations

import logging

from ._base import BrokerUnavailable
from ._envelope import EnvelopeError, decode
from ._history import HistoryEntry, HistoryOptions, HistoryPage, check_read
from ._history_script import READ, read_args, read_entries, read_position
from ._redis_names import ChannelNames
from ._redis_session import BrokerStats, CurrentSession, RedisOptions, Session, describe, on_session

__all__ = ["HistoryReader"]

log = logging.getLogger("hubbub.broker.redis")


class HistoryReader:
    """Reads a channel's position and stored publications in one script call.

    Bounded by ``publish_timeout``; fails with :class:`BrokerUnavailable` when not connected, when
    the session ends meanwhile, or when Redis fails the call. A stored entry that is not a valid
    envelope is left out, logged and counted in ``stats.decode_errors``.
    """

    def __init__(
        self, current: CurrentSession, names: ChannelNames, options: RedisOptions, stats: BrokerStats
    ) -> None:
        self._current = current
        self._names = names
        self._options = options
        self._stats = stats

    async def read(
        self, channel: str, options: HistoryOptions, since: int | None, limit: int | None, reverse: bool
    ) -> HistoryPage:
        check_read(since, limit)
        session = self._current.live()
        keys = self._names.history_keys(channel)
        args = read_args(options, since, limit, reverse)
        timeout = self._options.publish_timeout
        try:
            reply = await on_session(session, self._call(session, keys, args), timeout)
            position = read_position(reply)
            stored = read_entries(reply)
        except BrokerUnavailable:
            raise
        except TimeoutError:
            raise BrokerUnavailable(
                f"redis did not answer the history read of {channel!r} within {timeout}s"
            ) from None
        except Exception as exc:
            raise BrokerUnavailable(f"history read of {channel!r} failed: {describe(exc)}") from exc
        entries = []
        for offset, data in stored:
            try:
                entries.append(HistoryEntry(offset, decode(data).payload))
            except EnvelopeError as exc:
                self._stats.decode_errors += 1
                log.warning("redis broker: left out history entry %d of %r: %s", offset, channel, exc)
        return HistoryPage(entries, position)

    async def remove(self, channel: str) -> None:
        """Delete ``channel``'s stream of stored publications (its meta, offset and epoch, stay)."""
        session = self._current.live()
        _, stream = self._names.history_keys(channel)
        timeout = self._options.publish_timeout
        try:
            await on_session(session, session.client.delete([stream]), timeout)
        except BrokerUnavailable:
            raise
        except TimeoutError:
            raise BrokerUnavailable(
                f"redis did not answer the history removal of {channel!r} within {timeout}s"
            ) from None
        except Exception as exc:
            raise BrokerUnavailable(f"history removal of {channel!r} failed: {describe(exc)}") from exc

    async def _call(self, session: Session, keys: tuple[bytes, bytes], args: list[object]) -> object:
        from coredis.exceptions import NoScriptError

        try:
            return await session.client.evalsha(READ.sha, keys, args)
        except NoScriptError:
            return await session.client.eval(READ.text, keys, args)
