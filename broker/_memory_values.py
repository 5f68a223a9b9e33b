"""Shared values of the in-process broker: dictionaries with expiry times (one process shares them)."""

from __future__ import annotations

import time

__all__ = ["MemoryValues"]

#: Seconds between two sweeps of the expired values.
_PRUNE_INTERVAL = 30.0


class MemoryValues:
    """:class:`~hubbub.broker.SharedValues` kept in this process (what the memory broker offers)."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[bytes, float]] = {}
        self._tables: dict[str, dict[str, tuple[bytes, float]]] = {}
        self._next_prune = 0.0

    async def set_value(self, key: str, value: bytes, ttl: float, *, only_new: bool = False) -> bool:
        now = time.monotonic()
        held = self._values.get(key)
        if only_new and held is not None and held[1] > now:
            return False
        self._values[key] = (value, now + ttl)
        if now >= self._next_prune:
            self._next_prune = now + _PRUNE_INTERVAL
            self._prune(now)
        return True

    async def get_value(self, key: str) -> bytes | None:
        held = self._values.get(key)
        if held is None or held[1] <= time.monotonic():
            return None
        return held[0]

    async def delete_value(self, key: str) -> None:
        self._values.pop(key, None)

    async def put_entry(self, table: str, name: str, value: bytes, ttl: float) -> None:
        now = time.monotonic()
        entries = self._tables.setdefault(table, {})
        entries[name] = (value, now + ttl)
        for stale in [n for n, (_, expires) in entries.items() if expires <= now]:
            del entries[stale]

    async def entries(self, table: str) -> dict[str, bytes]:
        now = time.monotonic()
        return {n: v for n, (v, expires) in self._tables.get(table, {}).items() if expires > now}

    async def delete_entry(self, table: str, name: str) -> None:
        self._tables.get(table, {}).pop(name, None)

    def _prune(self, now: float) -> None:
        for key in [k for k, (_, expires) in self._values.items() if expires <= now]:
            del self._values[key]
