"""A broker capability: small values shared by the workers, each with an expiry.

Two kinds: single values under a key (the server API's idempotency results), and *tables*: one
key holding named entries that expire one by one (the workers' node records). A table is one key
so that it lives on one node of a Redis Cluster; each entry carries its own expiry (set from the
store's clock, not the writer's), readers never see an expired entry and writers prune them.
Keys and table names are under the broker's prefix.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["SharedValues"]


@runtime_checkable
class SharedValues(Protocol):
    """Shared values with expiries; every method raises :class:`~hubbub.broker.BrokerUnavailable`
    when the broker cannot answer now."""

    async def set_value(self, key: str, value: bytes, ttl: float, *, only_new: bool = False) -> bool:
        """Store ``value`` under ``key`` for ``ttl`` seconds; with ``only_new``, only if ``key`` has
        no value. True when it was stored."""
        ...

    async def get_value(self, key: str) -> bytes | None:
        """The value under ``key``, None when there is none (or it expired)."""
        ...

    async def delete_value(self, key: str) -> None:
        """Drop the value under ``key`` (if any)."""
        ...

    async def put_entry(self, table: str, name: str, value: bytes, ttl: float) -> None:
        """Store entry ``name`` of ``table`` for ``ttl`` seconds (replacing it), dropping expired ones."""
        ...

    async def entries(self, table: str) -> dict[str, bytes]:
        """The entries of ``table`` that have not expired."""
        ...

    async def delete_entry(self, table: str, name: str) -> None:
        """Drop entry ``name`` of ``table``."""
        ...
