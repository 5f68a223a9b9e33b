"""The outbound buffer on a real TCP connection whose peer stops reading, then reads again.

Frames are handed to the kernel one at a time, joined when small, or with ``sendmsg`` from an
offset into a partly sent frame; whichever way, every byte must arrive once and in order, and an
overflow must leave the stream at a frame boundary followed by the close frame.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio

from hubbub.cluster._transport.outbound import Outbound, WriteBatch


class _Owner:
    """Runs the flush task in ``nursery``; on overflow, queues ``final`` as the close frame."""

    def __init__(self, nursery: trio.Nursery, final: bytes = b"") -> None:
        self.nursery = nursery
        self.final = final
        self.out: Outbound | None = None
        self.flushes = 0
        self.overflows = 0

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self.flushes += 1
        self.nursery.start_soon(fn, *args)

    def overflowed(self) -> None:
        self.overflows += 1
        assert self.out is not None
        self.out.write_final(self.final)

    def abort(self) -> None:
        raise AssertionError("the kernel refused the socket")


@contextmanager
def _stalled_connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(the sending end, non-blocking; the peer, with a 4 KB receive buffer and not reading yet)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = socket.socket()
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        peer.connect(listener.getsockname())
        raw, _ = listener.accept()
    raw.setblocking(False)
    with raw, peer:
        yield raw, peer


def _frame(index: int, size: int) -> bytes:
    """A frame of its own content, so a byte lost, doubled or misplaced shows."""
    return (b"%08d" % index * (size // 8 + 1))[:size]


def _read(peer: socket.socket, size: int, end: bytes = b"") -> bytes:
    """Read ``size`` bytes, or up to ``end``, or what came until 5 s of silence."""
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    peer.settimeout(5)
    received = bytearray()
    while len(received) < size and not (end and received.endswith(end)):
        try:
            chunk = peer.recv(1 << 16)
        except TimeoutError:
            break
        if not chunk:
            break
        received += chunk
    return bytes(received)


@pytest.mark.trio
async def test_every_byte_arrives_once_in_order_across_a_stall() -> None:
    with _stalled_connection() as (raw, peer):
        async with trio.open_nursery() as nursery:
            owner = _Owner(nursery)
            out = Outbound(raw, 1 << 30, owner, WriteBatch())
            frames: list[bytes] = []

            def write(size: int) -> None:
                frames.append(_frame(len(frames), size))
                out.write(frames[-1])

            while not owner.flushes:  # small frames, joined, until the kernel takes part of a join
                for size in (300, 700, 1500):
                    write(size)
                out.send_pending()
            for _ in range(40):  # behind the kernel: large and small frames, many of each
                write(90_000)
                for size in (10, 200, 3000):
                    write(size)
            expected = b"".join(frames)
            received = await trio.to_thread.run_sync(_read, peer, len(expected))
            assert received == expected
            assert out.backlog == 0
            assert owner.overflows == 0


@pytest.mark.trio
async def test_an_overflow_ends_the_begun_frame_then_sends_the_close_frame() -> None:
    close = b"\x88\x02\x0f\xaa"  # a close frame, 4010
    with _stalled_connection() as (raw, peer):
        async with trio.open_nursery() as nursery:
            owner = _Owner(nursery, close)
            out = Outbound(raw, 1 << 20, owner, WriteBatch())
            owner.out = out
            frames: list[bytes] = []
            while not owner.overflows:
                frames.append(_frame(len(frames), 100_000))
                out.write(frames[-1])
            assert out.limited
            out.write(_frame(len(frames), 100))  # dropped: the socket is closing
            expected = b"".join(frames)
            received = await trio.to_thread.run_sync(_read, peer, len(expected), close)
            assert received.endswith(close)
            stream = received[: -len(close)]
            # A prefix of what was written, ending where a frame ends; the backlog beyond the
            # begun frame (the limit's worth, less a frame at most) never came.
            ends = {sum(len(frame) for frame in frames[:n]) for n in range(len(frames) + 1)}
            assert expected.startswith(stream) and len(stream) in ends
            assert len(expected) - len(stream) > (1 << 20) - 100_000
            assert out.backlog == 0
            assert owner.overflows == 1
