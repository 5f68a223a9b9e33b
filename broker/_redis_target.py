"""Where a Redis broker connects: standalone, Sentinel or Cluster, and how that is written in logs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

__all__ = ["RedisTarget", "redact_url"]


@dataclass(frozen=True)
class RedisTarget:
    """Where and how to reach Redis; built from a URL by :func:`hubbub.broker.parse_redis_url`."""

    kind: Literal["standalone", "sentinel", "cluster"]
    #: standalone: the ``redis://``/``rediss://`` URL, handed to coredis unchanged.
    url: str = ""
    #: sentinel: the sentinels; cluster: the startup nodes.
    nodes: tuple[tuple[str, int], ...] = ()
    service_name: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None

    def describe(self) -> str:
        """A log-safe description (no password)."""
        if self.kind == "standalone":
            return redact_url(self.url)
        hosts = ",".join(f"{h}:{p}" for h, p in self.nodes)
        if self.kind == "sentinel":
            return f"sentinel {hosts} service {self.service_name!r} db {self.db}"
        return f"cluster {hosts}"


#: Query parameters of a broker URL whose values are shown in logs; every other value is hidden.
_SHOWN_QUERY_KEYS = frozenset({"db", "service_name", "protocol_version"})


def redact_url(url: str) -> str:
    """``url`` safe for a log line: no password in the user info, no query value that may be secret."""
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, hosts = netloc.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{hosts}" if colon else f"{user}@{hosts}"
    query = "&".join(
        f"{key}={value if key in _SHOWN_QUERY_KEYS else '***'}"
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
