"""Client test fixtures: every test runs on trio and asyncio, against the official server and hubbub.

``server_kind`` is parametrized over (official | hubbub) x (json | minbin); ``servers`` starts
servers of that kind (times in seconds, converted to what each server's CLI takes) and ``server``
is one started with the defaults.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import pytest

from hubbub.client import ClientEvent, ReconnectOptions

#: Small reconnect delays so fault tests finish quickly (the defaults are 10 s/10 s/1.5/60 s).
FAST_RECONNECT = ReconnectOptions(initial_delay=0.2, randomness=0.1, multiplier=1.5, max_delay=1.0)


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass(frozen=True)
class ServerKind:
    kind: str  # "official" or "hubbub"
    codec: str
    loop: str = "trio"  # hubbub's --loop


KINDS = [
    pytest.param(ServerKind("official", "json"), id="official-json", marks=pytest.mark.interop),
    pytest.param(ServerKind("official", "minbin"), id="official-minbin", marks=pytest.mark.interop),
    pytest.param(ServerKind("hubbub", "json"), id="hubbub-json"),
    pytest.param(ServerKind("hubbub", "minbin"), id="hubbub-minbin"),
    # A worker on asyncio: the whole suite with json; minbin's smoke set is test_asyncio_smoke.py.
    pytest.param(ServerKind("hubbub", "json", "asyncio"), id="hubbub-json-asyncio"),
]


@pytest.fixture(params=KINDS)
def server_kind(request: pytest.FixtureRequest) -> ServerKind:
    kind: ServerKind = request.param
    return kind


class Servers:
    """Starts servers of one kind and codec; each returns the conftest ``RunningProcess``."""

    def __init__(self, kind: ServerKind, official: Any, hubbub: Any) -> None:
        self.kind = kind
        self._official = official
        self._hubbub = hubbub

    @property
    def codec(self) -> str:
        return self.kind.codec

    def start(
        self,
        *,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        port: int | None = None,
        protocol_version: int | None = None,
    ) -> Any:
        official = self.kind.kind == "official"
        args: list[str] = []
        if protocol_version is not None:
            args += ["--protocol-version", str(protocol_version)]
        for flag, seconds in (("--ping-interval", ping_interval), ("--ping-timeout", ping_timeout)):
            if seconds is not None:
                args += [flag, str(round(seconds * 1000)) if official else str(seconds)]
        if port is not None:
            args += ["--port", str(port)]
        if not official and self.kind.loop != "trio":
            args += ["--loop", self.kind.loop]
        factory = self._official if official else self._hubbub
        return factory(self.kind.codec, *args)

    async def start_async(self, **options: Any) -> Any:
        """:meth:`start` in a worker thread, so a running client is not held up."""
        return await anyio.to_thread.run_sync(lambda: self.start(**options))


@pytest.fixture
def servers(server_kind: ServerKind, official_server: Any, hubbub_server: Any) -> Servers:
    return Servers(server_kind, official_server, hubbub_server)


@pytest.fixture
def server(servers: Servers) -> Any:
    return servers.start()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def stopped_processes() -> Iterator[list[int]]:
    """Pids the test SIGSTOPped; they are SIGCONTed at the end whatever happens."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


async def next_event(
    events: Any, kind: type[ClientEvent] | tuple[type[Any], ...], timeout: float = 10
) -> Any:
    """The next event of ``kind`` from a ``client.events()`` iterator (others are skipped)."""
    with anyio.fail_after(timeout):
        async for event in events:
            if isinstance(event, kind):
                return event
    raise AssertionError(f"event stream ended before a {kind}")


@pytest.fixture(name="next_event")
def next_event_fixture() -> Any:
    """The :func:`next_event` helper (test modules cannot import conftest under importlib mode)."""
    return next_event


@pytest.fixture
def fast_reconnect() -> ReconnectOptions:
    return FAST_RECONNECT
