"""Node records: each worker keeps a small record of itself in the broker, refreshed in the background.

The records live in one table of the broker's :class:`~hubbub.broker.SharedValues` (``nodes``), each
entry expiring ``ttl`` seconds after its last refresh (every third of it), so a worker that dies is
gone from the table within ``ttl``; one that stops takes its record out. Reading the table tells which
workers are alive and what they serve (the server API's ``info``, and whom its surveys wait for).
This worker's own record is always read fresh. A broker without shared values (or the memory
broker, shared within one process) knows only this worker.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import anyio

from hubbub.broker import BrokerUnavailable, SharedValues

__all__ = ["TABLE", "NodeRegistry"]

log = logging.getLogger("hubbub.nodes")

TABLE = "nodes"


class NodeRegistry:
    """This worker's node record (``describe()`` gives it, with ``uid``) and the records of all."""

    def __init__(
        self, values: SharedValues | None, uid: str, ttl: float, describe: Callable[[], dict[str, Any]]
    ) -> None:
        self._values = values
        self.uid = uid
        self.ttl = ttl
        self._describe = describe

    async def run(self) -> None:
        """Refresh this worker's record every third of the ttl, until cancelled."""
        if self._values is None:
            return
        while True:
            await self.refresh()
            await anyio.sleep(self.ttl / 3)

    async def refresh(self) -> bool:
        """Write this worker's record now; False when the broker could not take it (logged)."""
        if self._values is None:
            return False
        try:
            await self._values.put_entry(TABLE, self.uid, json.dumps(self._describe()).encode(), self.ttl)
        except BrokerUnavailable as error:
            log.warning("nodes: could not refresh this worker's record: %s", error)
            return False
        return True

    async def leave(self) -> None:
        """Take this worker's record out (when it stops); a failure is left to the ttl."""
        if self._values is None:
            return
        with anyio.move_on_after(1.0):
            try:
                await self._values.delete_entry(TABLE, self.uid)
            except BrokerUnavailable:
                pass

    async def nodes(self) -> list[dict[str, Any]]:
        """The records of every live worker, this one's fresh; raises BrokerUnavailable."""
        records: dict[str, dict[str, Any]] = {}
        if self._values is not None:
            for uid, raw in (await self._values.entries(TABLE)).items():
                try:
                    record = json.loads(raw)
                except ValueError:
                    log.warning("nodes: dropped the unreadable record of %r", uid)
                    continue
                if isinstance(record, dict):
                    records[uid] = record
        records[self.uid] = self._describe()
        return sorted(records.values(), key=lambda record: str(record.get("name", "")))
