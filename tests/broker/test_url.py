"""URL schemes for open_broker."""

from __future__ import annotations

import sys

import pytest
import trio

from hubbub.broker import MemoryBroker, open_broker, parse_redis_url
from hubbub.broker._redis_target import redact_url


def test_standalone_urls_pass_through() -> None:
    for url in ("redis://localhost:6380/2", "rediss://u:p@host:6390/0?ssl_cert_reqs=none"):
        target = parse_redis_url(url)
        assert target.kind == "standalone"
        assert target.url == url
    assert "p" not in parse_redis_url("rediss://u:secret@host/0").describe().replace("rediss", "")


def test_sentinel_url_master_in_path_or_query() -> None:
    t = parse_redis_url("redis+sentinel://user:pw@s1:26380,s2/mymaster/3?sentinel_password=sp")
    assert t.kind == "sentinel"
    assert t.nodes == (("s1", 26380), ("s2", 26379))
    assert (t.service_name, t.db, t.username, t.password, t.sentinel_password) == (
        "mymaster",
        3,
        "user",
        "pw",
        "sp",
    )
    t = parse_redis_url("redis+sentinel://s1?service_name=other")
    assert (t.service_name, t.db) == ("other", 0)
    with pytest.raises(ValueError, match="master name"):
        parse_redis_url("redis+sentinel://s1:26379")


def test_cluster_url() -> None:
    t = parse_redis_url("redis+cluster://a:7000,b:7001,[::1]:7002,c")
    assert t.kind == "cluster"
    assert t.nodes == (("a", 7000), ("b", 7001), ("::1", 7002), ("c", 6379))
    with pytest.raises(ValueError, match="no database"):
        parse_redis_url("redis+cluster://a:7000/1")


@pytest.mark.parametrize(
    "url",
    [
        "http://x",
        "redis://a:1,b:2",
        "redis+cluster://",
        "redis+cluster://a:notaport",
        "redis://h:abc/0",
        "redis://h:6379/0x",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError, match=r"scheme|one host|no host|bad port|bad database"):
        parse_redis_url(url)


@pytest.mark.trio
async def test_memory_url_does_not_import_coredis() -> None:
    had = "coredis" in sys.modules
    async with open_broker("memory://") as broker:
        assert isinstance(broker, MemoryBroker)
        assert broker.ready
        with trio.fail_after(1):
            await broker.wait_ready()
    if not had:
        assert "coredis" not in sys.modules


@pytest.mark.trio
async def test_unknown_scheme_raises() -> None:
    with pytest.raises(ValueError, match="unknown broker URL scheme"):
        async with open_broker("kafka://x"):
            pass


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://u:pw@h:1/0", "redis://u:***@h:1/0"),
        ("redis://h:1/0?password=pw&db=2", "redis://h:1/0?password=***&db=2"),
        ("rediss://:pw@h:1?ssl_keyfile=/k&username=u", "rediss://:***@h:1?ssl_keyfile=***&username=***"),
        ("redis://h:1/0", "redis://h:1/0"),
    ],
)
def test_redacted_url_shows_no_secret(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "pw" not in redact_url(url)
