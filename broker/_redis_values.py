"""Shared values on Redis (:class:`~hubbub.broker.SharedValues`): plain keys, and tables as hashes.

A table is one hash; each field's value is ``<expiry in ms>:<value>``, the expiry taken from Redis's
own clock (``TIME``) in the scripts below, so workers on hosts with skewed clocks agree on it. The
hash itself expires with its longest-lived entry. Each call runs on the broker's current session
within ``publish_timeout``; any failure is a :class:`~hubbub.broker.BrokerUnavailable`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from ._base import BrokerUnavailable
from ._redis_session import CurrentSession, describe

__all__ = ["RedisValues"]

T = TypeVar("T")

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
#: KEYS[1] the table; ARGV: entry name, value, ttl in ms.
_PUT_ENTRY = (
    _NOW
    + """
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], (now + ttl) .. ':' .. ARGV[2])
local all = redis.call('HGETALL', KEYS[1])
local longest = ttl
for i = 1, #all, 2 do
  local expires = tonumber(string.match(all[i + 1], '^(%d+):'))
  if expires == nil or expires <= now then
    redis.call('HDEL', KEYS[1], all[i])
  elseif expires - now > longest then
    longest = expires - now
  end
end
redis.call('PEXPIRE', KEYS[1], longest)
return 1
"""
)
#: KEYS[1] the table; answers name, value, name, value... of the live entries.
_ENTRIES = (
    _NOW
    + """
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  local expires, value = string.match(all[i + 1], '^(%d+):(.*)$')
  if expires ~= nil and tonumber(expires) > now then
    live[#live + 1] = all[i]
    live[#live + 1] = value
  end
end
return live
"""
)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisValues:
    """Shared values under ``prefix`` on the broker's current Redis session."""

    def __init__(self, current: CurrentSession, prefix: str, timeout: float) -> None:
        self._current = current
        self._prefix = prefix.encode()
        self._timeout = timeout

    def _key(self, key: str) -> bytes:
        return self._prefix + key.encode("utf-8", "surrogatepass")

    def _table(self, table: str) -> bytes:
        return self._prefix + b"{" + table.encode() + b"}"

    async def _run(self, what: str, call: Callable[[Any], Awaitable[T]]) -> T:
        client = self._current.live().client
        try:
            with anyio.fail_after(self._timeout):
                return await call(client)
        except TimeoutError:
            raise BrokerUnavailable(f"redis did not answer {what} within {self._timeout}s") from None
        except BrokerUnavailable:
            raise
        except Exception as error:
            raise BrokerUnavailable(f"{what} failed: {describe(error)}") from error

    async def set_value(self, key: str, value: bytes, ttl: float, *, only_new: bool = False) -> bool:
        from coredis.tokens import PureToken

        condition = PureToken.NX if only_new else None

        async def call(client: Any) -> Any:
            return await client.set(self._key(key), value, condition=condition, px=_ms(ttl))

        return bool(await self._run("SET", call))

    async def get_value(self, key: str) -> bytes | None:
        async def call(client: Any) -> Any:
            return await client.get(self._key(key))

        value = await self._run("GET", call)
        return bytes(value) if value is not None else None

    async def delete_value(self, key: str) -> None:
        async def call(client: Any) -> Any:
            return await client.delete([self._key(key)])

        await self._run("DEL", call)

    async def put_entry(self, table: str, name: str, value: bytes, ttl: float) -> None:
        async def call(client: Any) -> Any:
            return await client.eval(_PUT_ENTRY, keys=[self._table(table)], args=[name, value, _ms(ttl)])

        await self._run("a table write", call)

    async def entries(self, table: str) -> dict[str, bytes]:
        async def call(client: Any) -> Any:
            return await client.eval(_ENTRIES, keys=[self._table(table)], args=[])

        flat = await self._run("a table read", call)
        names = [bytes(item).decode("utf-8", "replace") for item in flat[0::2]]
        return dict(zip(names, (bytes(item) for item in flat[1::2]), strict=True))

    async def delete_entry(self, table: str, name: str) -> None:
        async def call(client: Any) -> Any:
            return await client.hdel(self._table(table), [name])

        await self._run("HDEL", call)
