"""Publishing on Redis: a queue of pending publishes that one writer per session sends in batches.

A publish on a channel with history is the same queued item with the history script's keys and
arguments: the writer sends it as ``EVALSHA`` in the same pipeline (``EVAL`` again for those Redis
answered ``NOSCRIPT``), and its answer is the position the publication was stored at.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import anyio

from ._base import BrokerUnavailable
from ._coredis_internals import shard_names
from ._envelope import Envelope
from ._history import HistoryOptions, StreamPosition
from ._history_script import PUBLISH, READ, read_position
from ._publication import RedisPublication, redis_publication
from ._redis_names import ChannelNames
from ._redis_session import (
    BrokerStats,
    CurrentSession,
    RedisOptions,
    Session,
    describe,
    leaves_connection_unknown,
)

__all__ = ["Publisher"]

log = logging.getLogger("hubbub.broker.redis")


@dataclass(eq=False)
class _Pending:
    publication: RedisPublication
    done: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None
    abandoned: bool = False
    #: The position a history publish was stored at.
    position: StreamPosition | None = None

    def finish(self, error: BaseException | None = None) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()


class Publisher:
    """Queues each publish and answers it once Redis accepted (or refused) it.

    :meth:`write` is the session's writer: it takes everything queued (up to ``max_batch``) and
    sends it as one pipeline, so a burst costs one round trip. When the session ends,
    :meth:`fail_pending` fails what is still queued.
    """

    def __init__(
        self,
        current: CurrentSession,
        names: ChannelNames,
        options: RedisOptions,
        stats: BrokerStats,
        *,
        worker_id: str,
        cluster: bool,
    ) -> None:
        self._current = current
        self._names = names
        self._options = options
        self._stats = stats
        self._worker_id = worker_id
        self._cluster = cluster
        self._queue: deque[_Pending] = deque()
        self._queue_event = anyio.Event()
        self._seq = itertools.count()

    async def publish(self, channel: str, data: Any) -> None:
        """Publish ``data`` on ``channel``; raises :class:`BrokerUnavailable` when Redis did not take it."""
        await self._publish(channel, data, None)

    async def publish_history(self, channel: str, data: Any, options: HistoryOptions) -> StreamPosition:
        """Store, number and publish ``data`` (the history script); returns its position.

        Raises :class:`BrokerUnavailable` when Redis did not take it.
        """
        item = await self._publish(channel, data, options)
        assert item.position is not None
        return item.position

    async def _publish(self, channel: str, data: Any, history: HistoryOptions | None) -> _Pending:
        self._current.live()
        started = time.monotonic()
        envelope = Envelope.new(channel, data, publish_id=next(self._seq), origin=self._worker_id)
        item = _Pending(redis_publication(self._names, envelope, history, sharded=self._cluster))
        await self._submit(item, channel, started)
        return item

    async def _submit(self, item: _Pending, channel: str, started: float) -> None:
        self._queue.append(item)
        self._queue_event.set()
        timeout = self._options.publish_timeout
        try:
            with anyio.fail_after(timeout):
                await item.done.wait()
        except TimeoutError:
            item.abandoned = True
            self._stats.publish_errors += 1
            raise BrokerUnavailable(
                f"redis did not accept the publish on {channel!r} within {timeout}s"
            ) from None
        except BaseException:
            item.abandoned = True
            raise
        if item.error is not None:
            self._stats.publish_errors += 1
            if isinstance(item.error, BrokerUnavailable):
                raise BrokerUnavailable(str(item.error))
            raise BrokerUnavailable(f"publish on {channel!r} failed: {describe(item.error)}") from item.error
        self._stats.published += 1
        self._stats.publish_seconds_total += time.monotonic() - started

    def fail_pending(self, failure: BaseException) -> None:
        """Fail every queued publish with ``failure``."""
        while self._queue:
            self._queue.popleft().finish(failure)

    async def write(self, session: Session) -> None:
        """Send queued publishes on ``session`` in pipelined batches, until the session ends."""
        while True:
            if not session.alive:  # draining: what is still queued fails with the session
                await anyio.sleep_forever()
            batch = await self._next_batch()
            if batch:
                await self._send(session, batch)

    async def _next_batch(self) -> list[_Pending]:
        queue = self._queue
        while not queue:
            if self._queue_event.is_set():
                self._queue_event = anyio.Event()
            await self._queue_event.wait()
        batch: list[_Pending] = []
        while queue and len(batch) < self._options.max_batch:
            item = queue.popleft()
            if not item.abandoned:
                batch.append(item)
        return batch

    async def _send(self, session: Session, batch: list[_Pending]) -> None:
        session.writer_idle = anyio.Event()
        names = [item.publication.name for item in batch]
        shards = shard_names(session.client, names) if self._cluster else None
        try:
            history = any(item.publication.history for item in batch)
            if history and not session.scripts_loaded:
                await self._load_scripts(session)
            results = await self._pipeline(session, batch, text=False)
            if history:
                from coredis.exceptions import NoScriptError

                retry = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
                if retry:  # the scripts were flushed since: EVAL loads it again
                    again = await self._pipeline(session, [batch[i] for i in retry], text=True)
                    for i, result in zip(retry, again, strict=True):
                        results[i] = result
        except BaseException as exc:
            for item in batch:
                item.finish(exc)
            raise
        finally:
            session.writer_idle.set()
        self._stats.publish_batches += 1
        moved: set[int] = set()
        if shards is not None:
            after = shard_names(session.client, names)
            moved = {i for i, (a, b) in enumerate(zip(shards, after, strict=True)) if a != b}
        for i, (item, result) in enumerate(zip(batch, results, strict=True)):
            if i in moved:
                # coredis followed a MOVED redirect: the slot changed owner during the publish,
                # so the subscribers on the old shard (this worker's included) may not have it.
                item.finish(BrokerUnavailable("the channel's cluster slot moved during the publish"))
            elif isinstance(result, BaseException):
                item.finish(result)
            elif not item.publication.history:
                item.finish()
            else:
                try:
                    item.position = read_position(result)
                except ValueError as exc:
                    item.finish(exc)
                else:
                    item.finish()

    async def _pipeline(self, session: Session, batch: list[_Pending], *, text: bool) -> list[Any]:
        """Send ``batch`` as one pipeline; the history scripts by SHA, or as ``text``."""
        async with session.client.pipeline(
            transaction=False, raise_on_error=False, timeout=self._options.publish_timeout
        ) as pipe:
            for item in batch:
                publication = item.publication
                if publication.keys is None:
                    session.publish(pipe, publication.name, publication.envelope)
                elif text:
                    pipe.eval(PUBLISH.text, publication.keys, publication.args)
                else:
                    pipe.evalsha(PUBLISH.sha, publication.keys, publication.args)
        return list(pipe.results)

    async def _load_scripts(self, session: Session) -> None:
        """``SCRIPT LOAD`` the history scripts (on every node of a cluster), once per session.

        So that ``EVALSHA`` finds them: a ``NOSCRIPT`` retried with ``EVAL`` would come after later
        publishes on the same channel that found the script another worker had loaded meanwhile.
        """
        session.scripts_loaded = True
        try:
            with anyio.fail_after(self._options.publish_timeout):
                for script in (PUBLISH, READ):
                    await session.client.script_load(script.text)
        except Exception as exc:
            if leaves_connection_unknown(exc):
                raise
            log.warning("redis broker: SCRIPT LOAD refused (%s); history publishes use EVAL", describe(exc))
