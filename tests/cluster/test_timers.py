"""The worker's timers in-process: pings spread over the interval and every deadline, on trio's mock clock."""

from __future__ import annotations

import socket

import pytest
import trio
import trio.testing

from hubbub.cluster._transport.timers import Timers
from hubbub.protocol import CloseCode

PING = b"\x81\x00"


class Conn:
    """A connection as the timers see it, recording what they do to it."""

    def __init__(self, opened_at: float = 0.0, silent_since: float | None = None) -> None:
        self.opened_at = opened_at
        self.close_deadline = 0.0
        self.silent_since = silent_since
        self.frames: list[bytes] = []
        self.closed_with: int | None = None
        self.aborted = False

    def ping_expired(self, now: float) -> bool:
        return self.silent_since is not None and now - self.silent_since > 5

    def send_frame(self, frame: bytes) -> None:
        self.frames.append(frame)

    def disconnect(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        self.closed_with = code

    def abort(self) -> None:
        self.aborted = True


def _timers() -> Timers:
    return Timers(ping_interval=8.0, handshake_timeout=4.0, close_timeout=2.0, ping=PING)


@pytest.mark.trio
async def test_each_open_connection_is_pinged_once_per_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timers = _timers()
    conns = [Conn() for _ in range(40)]
    for conn in conns:
        timers.connecting(conn)
        timers.opened(conn)
    assert timers.open_count == 40
    async with trio.open_nursery() as nursery:
        nursery.start_soon(timers.run)
        await trio.sleep(8.0 * 3 + 0.01)
        nursery.cancel_scope.cancel()
    assert {len(conn.frames) for conn in conns} == {3}
    assert all(frame == PING for conn in conns for frame in conn.frames)


def test_a_silent_connection_is_closed_with_the_pong_timeout() -> None:
    timers = _timers()
    silent, alive = Conn(silent_since=0.0), Conn()
    for conn in (silent, alive):
        timers.connecting(conn)
        timers.opened(conn)
    for slot in timers._slots:
        timers.tick(slot, now=10.0)
    assert silent.closed_with == CloseCode.CLIENT_PONG_TIMEOUT and silent.frames == []
    assert alive.closed_with is None and alive.frames == [PING]


def test_the_handshake_and_close_deadlines() -> None:
    timers = _timers()
    late, early = Conn(opened_at=0.0), Conn(opened_at=3.0)
    timers.connecting(late)
    timers.connecting(early)
    closing = Conn()
    closing.close_deadline = 5.0
    timers.connecting(closing)
    timers.closing(closing)
    timers.tick(set(), now=4.5)
    assert late.closed_with == CloseCode.HANDSHAKE_TIMEOUT and early.closed_with is None
    assert not closing.aborted
    timers.tick(set(), now=5.5)
    assert closing.aborted
    assert timers.live_count == 3  # nothing is forgotten until the connection ends
    assert not timers.forget(late) and timers.live_count == 2


@pytest.mark.trio
async def test_an_http_phase_past_the_handshake_timeout_wakes_its_reader(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timers = _timers()
    left, right = socket.socketpair()
    left.setblocking(False)
    try:
        timers.upgrading(left)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(timers.run)
            with pytest.raises(trio.ClosedResourceError), trio.fail_after(10):
                await trio.lowlevel.wait_readable(left)
            assert not timers.upgraded(left)
            nursery.cancel_scope.cancel()
    finally:
        left.close()
        right.close()


@pytest.mark.trio
async def test_wait_all_closed_returns_when_the_last_connection_ends() -> None:
    timers = _timers()
    conn = Conn()
    timers.connecting(conn)
    timers.opened(conn)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(timers.wait_all_closed)
        await trio.testing.wait_all_tasks_blocked()
        assert timers.forget(conn)
    assert timers.live_count == 0
