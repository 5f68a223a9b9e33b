"""Outbound in-process over a real socket pair: coalescing, partial sends, overflow, a refused socket."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import trio

from hubbub.cluster._transport.outbound import EARLY_SEND, Outbound, WriteBatch


class CountingSocket(socket.socket):
    """A real socket that counts its ``send`` and ``sendmsg`` calls."""

    sends = 0

    def send(self, data: Any, flags: int = 0) -> int:
        self.sends += 1
        return super().send(data, flags)

    def sendmsg(self, buffers: Any, *args: Any) -> int:
        self.sends += 1
        return super().sendmsg(buffers, *args)


class Owner:
    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.overflows = 0
        self.aborts = 0

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self.nursery.start_soon(fn, *args)

    def overflowed(self) -> None:
        self.overflows += 1

    def abort(self) -> None:
        self.aborts += 1


@pytest.fixture
def pair() -> Iterator[tuple[CountingSocket, socket.socket]]:
    left, right = socket.socketpair()
    sender = CountingSocket(left.family, left.type, fileno=left.detach())
    sender.setblocking(False)
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    right.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    right.setblocking(False)
    yield sender, right
    sender.close()
    right.close()


def _drain(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return b"".join(chunks)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


@pytest.mark.trio
async def test_writes_of_one_scheduler_step_go_out_in_one_send(
    pair: tuple[CountingSocket, socket.socket],
) -> None:
    sender, receiver = pair
    batch = WriteBatch()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(batch.run)
        out = Outbound(sender, 1 << 20, Owner(nursery), batch)
        for i in range(10):
            out.write(b"message %d;" % i)
        assert sender.sends == 0
        await trio.testing.wait_all_tasks_blocked()
        assert sender.sends == 1
        assert _drain(receiver) == b"".join(b"message %d;" % i for i in range(10))
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_large_step_is_sent_early(pair: tuple[CountingSocket, socket.socket]) -> None:
    sender, _ = pair
    async with trio.open_nursery() as nursery:
        out = Outbound(sender, 1 << 30, Owner(nursery), WriteBatch())
        out.write(b"x" * (EARLY_SEND - 1))
        assert sender.sends == 0
        out.write(b"x")
        assert sender.sends == 1
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_what_the_kernel_refuses_is_flushed_when_writable(
    pair: tuple[CountingSocket, socket.socket],
) -> None:
    sender, receiver = pair
    data = bytes(range(256)) * 2048  # 512 KiB, far beyond both socket buffers
    async with trio.open_nursery() as nursery:
        owner = Owner(nursery)
        out = Outbound(sender, 1 << 30, owner, WriteBatch())
        out.write(data)  # past EARLY_SEND: sent at once, the kernel takes part of it
        assert out.backlog > 0 and sender.sends == 1
        received = bytearray()
        with trio.fail_after(10):
            while len(received) < len(data):
                await trio.lowlevel.wait_readable(receiver)
                received += _drain(receiver)
        assert bytes(received) == data and out.backlog == 0
        assert (owner.overflows, owner.aborts) == (0, 0)


@pytest.mark.trio
async def test_a_backlog_past_the_limit_overflows_once_and_drops_later_writes(
    pair: tuple[CountingSocket, socket.socket],
) -> None:
    sender, _ = pair
    async with trio.open_nursery() as nursery:
        owner = Owner(nursery)
        out = Outbound(sender, 100_000, owner, WriteBatch())
        out.write(b"x" * 90_000)  # the receiver never reads: most of it stays queued
        assert owner.overflows == 0
        for _ in range(5):
            out.write(b"y" * EARLY_SEND)
        assert owner.overflows == 1 and out.limited
        backlog = out.backlog
        out.write(b"z" * 10)
        assert out.backlog == backlog
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_socket_the_kernel_refuses_aborts_the_owner(
    pair: tuple[CountingSocket, socket.socket],
) -> None:
    sender, receiver = pair
    receiver.close()
    async with trio.open_nursery() as nursery:
        owner = Owner(nursery)
        out = Outbound(sender, 1 << 20, owner, WriteBatch())
        out.write(b"x" * EARLY_SEND)
        assert owner.aborts == 1 and out.closed
        out.write(b"more")
        assert out.backlog == 0
