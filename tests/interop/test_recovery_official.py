"""Channels with history and the official socketcluster-client@20, unchanged (issue 12).

``recovery.js`` runs the code that docs/recovery-protocol.md documents for JavaScript apps (read
from the doc): it subscribes with ``data.recover`` holding a position object that it updates from
the raw ``#publish`` packets. A Python client publishes; the node process is told over stdin when
to disconnect and reconnect, and reports over stdout what it received and what it saw on the wire.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from hubbub.client import connect

from ..conftest import reap
from .conftest import CODECS, INTEROP, require_node

pytestmark = [pytest.mark.interop, pytest.mark.trio]

CONFIG = """
[[channels]]
match = "hist/*"
history_size = 100
history_ttl = 60

[[channels]]
match = "short/*"
history_size = 3
history_ttl = 60
"""

STEP = 20  # seconds any one step may take


class Node:
    """``recovery.js`` under trio: commands on stdin, JSON lines from stdout."""

    def __init__(self, process: trio.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._buffer = b""
        #: What the channel delivered, as far as read from stdout.
        self.delivered: list[Any] = []

    async def send(self, command: str) -> None:
        await self._stdin.send_all(command.encode() + b"\n")

    async def expect(self, event: str) -> dict[str, Any]:
        """The next line of ``event``; ``received`` lines on the way are noted in :attr:`delivered`."""
        with trio.fail_after(STEP):
            while True:
                line = await self._line()
                if line["event"] == event:
                    return line
                if line["event"] != "received":
                    pytest.fail(f"recovery.js said {line} while {event!r} was expected")
                self.delivered.append(line["data"])

    async def received(self, i: int) -> None:
        """Until the channel delivered the publication ``{"i": i}`` (all it delivered is in the report)."""
        while {"i": i} not in self.delivered:
            self.delivered.append((await self.expect("received"))["data"])

    async def _line(self) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            chunk = await self._stdout.receive_some(65536)
            if not chunk:
                pytest.fail(f"recovery.js exited; last output {self._buffer[-2000:]!r}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        result: dict[str, Any] = json.loads(line)
        return result


@asynccontextmanager
async def recovery_js(url: str, codec: str, channel: str) -> AsyncIterator[Node]:
    """``recovery.js`` subscribed to ``channel``; killed on the way out."""
    require_node()
    cmd = ["node", "recovery.js", "--url", url, "--codec", codec, "--channel", channel]
    process = await trio.lowlevel.open_process(
        cmd, cwd=INTEROP, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        node = Node(process)
        await node.expect("subscribed")
        yield node
    finally:
        await reap(process)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def server_url(
    request: pytest.FixtureRequest, start_server: Callable[..., Any], tmp_path: Path, prefix: str
) -> Callable[[str], str]:
    """``server_url(codec)``: a worker with the ``[[channels]]`` rules of ``CONFIG``, on the memory
    broker or on a Redis of the session; its URL."""
    broker: list[str] = []
    if request.param == "redis":
        broker = ["--broker", request.getfixturevalue("redis_server").url, "--broker-prefix", prefix]

    def start(codec: str) -> str:
        config = tmp_path / "hubbub.toml"
        config.write_text(CONFIG, encoding="utf-8")
        return str(start_server("--config", str(config), *broker, codec=codec).url)

    return start


async def away_and_back(
    url: str, codec: str, channel: str, *, before: int, away: int, racing: int
) -> tuple[Any, int]:
    """The node side's report and the number of publications, after this: it receives ``before``
    publications, disconnects, misses ``away``, reconnects while up to ``racing`` more are published
    (until it is subscribed again), and receives one more published after that. Publications are
    ``{"i": 1}``, ``{"i": 2}`` ... in publish order."""
    published = 0

    async def publish(count: int, stop: trio.Event | None = None) -> None:
        nonlocal published
        for _ in range(count):
            if stop is not None and stop.is_set():
                return
            published += 1
            await client.publish(channel, {"i": published})

    async with connect(url, codec=codec) as client, recovery_js(url, codec, channel) as node:
        await publish(before)
        await node.received(before)
        await node.send("disconnect")
        disconnected = await node.expect("disconnected")
        await publish(away)
        await node.send("reconnect")
        async with trio.open_nursery() as nursery:
            stop = trio.Event()
            nursery.start_soon(publish, racing, stop)
            await node.expect("resubscribed")
            stop.set()
        await publish(1)
        await node.received(published)
        await node.send("report")
        report = await node.expect("report")
    report["disconnected"] = disconnected["position"]
    return report, published


@pytest.mark.parametrize("codec", CODECS)
async def test_official_client_recovers_what_it_missed(server_url: Callable[[str], str], codec: str) -> None:
    before, away = 10, 15
    # Up to 40 published during the reconnect, some of them after the worker took the resubscribe
    # (live ones while it recovers); at most 55 missed, well within the history of 100.
    report, total = await away_and_back(
        server_url(codec), codec, f"hist/{uuid.uuid4().hex}", before=before, away=away, racing=40
    )
    # The channel delivered every publication's data, in order, once (missed ones included).
    assert report["received"] == [{"i": i} for i in range(1, total + 1)]
    # On the wire: every #publish carried its offset and epoch, one epoch throughout.
    publishes = report["publishes"]
    assert [p["data"] for p in publishes] == report["received"]
    assert [p["offset"] for p in publishes] == list(range(1, total + 1))
    epoch = publishes[0]["epoch"]
    assert isinstance(epoch, str) and epoch
    assert {p["epoch"] for p in publishes} == {epoch}
    assert all(set(p) == {"channel", "data", "offset", "epoch"} for p in publishes)
    # The documented position: at the last publication received; re-sent on the resubscribe.
    assert report["disconnected"] == {"offset": before, "epoch": epoch}
    assert report["subscribeRequests"] == [
        {"data": {"recover": {"offset": 0, "epoch": ""}}},
        {"data": {"recover": {"offset": before, "epoch": epoch}}},
    ]
    assert report["position"] == {"offset": total, "epoch": epoch}
    assert report["gaps"] == []
    first, again = report["answers"]
    assert first == {"offset": 0, "epoch": epoch}
    assert again["recovered"] is True and again["epoch"] == epoch
    assert before + away <= again["offset"] < total


@pytest.mark.parametrize("codec", CODECS)
async def test_official_client_learns_of_a_failed_recovery(
    server_url: Callable[[str], str], codec: str
) -> None:
    # "short/*" keeps 3 publications: 5 missed cannot be recovered.
    report, _ = await away_and_back(
        server_url(codec), codec, f"short/{uuid.uuid4().hex}", before=2, away=5, racing=0
    )
    assert report["received"] == [{"i": 1}, {"i": 2}, {"i": 8}]
    (answer,) = report["answers"][1:]
    epoch = answer["epoch"]
    assert answer == {"recovered": False, "reason": "too many missed", "offset": 7, "epoch": epoch}
    assert report["gaps"] == [{"at": {"offset": 2, "epoch": epoch}, "offset": 8, "epoch": epoch}]
    assert report["position"] == {"offset": 8, "epoch": epoch}
