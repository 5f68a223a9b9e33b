"""``open_broker(url)``: pick and open a broker by URL scheme.

=====================================================  ==========================================
``memory://``                                          in-process :class:`MemoryBroker`
``redis://[user:pass@]host[:port][/db][?opts]``        standalone Redis
``rediss://...``                                       standalone Redis over TLS (``ssl_*`` opts)
``redis+sentinel://[user:pass@]h1[:p1],h2[:p2]/name``  Sentinel; ``name`` is the master (service)
                                                       name, or ``?service_name=name``; ``/name/db``
                                                       selects a database; default port 26379;
                                                       ``?sentinel_password=`` for the sentinels
``redis+cluster://[user:pass@]h1[:p1],h2[:p2]``        Redis Cluster, sharded pub/sub
=====================================================  ==========================================

See ``docs/broker.md``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from ._base import Broker
from ._memory import MemoryBroker
from ._redis import RedisBroker
from ._redis_target import RedisTarget

__all__ = ["SCHEMES", "ManagedBroker", "open_broker", "parse_redis_url"]

SCHEMES = ("memory", "redis", "rediss", "redis+sentinel", "redis+cluster")


class ManagedBroker(Broker, Protocol):
    """What :func:`open_broker` yields: a :class:`Broker` that can also be waited on."""

    async def wait_ready(self) -> None:
        """Return once :attr:`ready` is True."""
        ...


def _split_hosts(netloc: str, default_port: int) -> tuple[str | None, str | None, list[tuple[str, int]]]:
    userinfo, at, hostlist = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, pw = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if colon else None
    nodes: list[tuple[str, int]] = []
    for part in hostlist.split(","):
        part = part.strip()
        if not part:
            continue
        if part.startswith("["):  # [ipv6]:port
            host, _, rest = part[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        else:
            host, _, port = part.partition(":")
        try:
            nodes.append((host, int(port) if port else default_port))
        except ValueError:
            raise ValueError(f"bad port in broker URL host {part!r}") from None
    if not nodes:
        raise ValueError("broker URL names no host")
    return username, password, nodes


def _db_number(text: str, scheme: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"bad database number {text!r} in {scheme}:// URL") from None


def parse_redis_url(url: str) -> RedisTarget:
    """Turn a ``redis*://`` URL into a :class:`RedisTarget`; raises :class:`ValueError` if invalid."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if scheme in ("redis", "rediss"):
        if "," in parts.netloc:
            raise ValueError(f"{scheme}:// takes one host; use redis+cluster:// or redis+sentinel://")
        _split_hosts(parts.netloc, 6379)  # the port must be a number
        _db_number(parts.path.strip("/") or query.get("db", "0"), scheme)
        return RedisTarget("standalone", url=url)
    if scheme == "redis+sentinel":
        username, password, nodes = _split_hosts(parts.netloc, 26379)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        service = query.get("service_name") or (segments[0] if segments else None)
        if not service:
            raise ValueError("redis+sentinel:// needs the master name: redis+sentinel://host:26379/mymaster")
        db = _db_number(query.get("db") or (segments[1] if len(segments) > 1 else "0"), scheme)
        return RedisTarget(
            "sentinel",
            nodes=tuple(nodes),
            service_name=service,
            db=db,
            username=username,
            password=password,
            sentinel_password=query.get("sentinel_password"),
        )
    if scheme == "redis+cluster":
        username, password, nodes = _split_hosts(parts.netloc, 6379)
        if parts.path.strip("/"):
            raise ValueError("redis+cluster:// has no database path (a cluster only has db 0)")
        return RedisTarget("cluster", nodes=tuple(nodes), username=username, password=password)
    raise ValueError(f"unknown broker URL scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")


@asynccontextmanager
async def open_broker(
    url: str, *, prefix: str = "hubbub:", worker_id: str | None = None, **options: Any
) -> AsyncIterator[ManagedBroker]:
    """Open the broker ``url`` names for the duration of the ``async with`` block.

    ``options`` go to :class:`RedisBroker` (``connect_timeout``, ``publish_timeout``,
    ``subscribe_timeout``, ``max_batch``, ``backoff_initial``, ``backoff_max``, ...); the memory
    broker takes none. Raises :class:`ValueError` for an unknown scheme or malformed URL.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        yield MemoryBroker()
        return
    target = parse_redis_url(url)
    async with RedisBroker(target, prefix=prefix, worker_id=worker_id, **options) as broker:
        yield broker
