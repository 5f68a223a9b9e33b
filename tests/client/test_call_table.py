"""The call table in-process: ids, responses matched to requests, failures, timeouts."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from hubbub.client import AckTimeoutError, ConnectionClosedError, NotConnectedError, RemoteError
from hubbub.client._calls import CallTable
from hubbub.protocol import Response

from .fakes import Link, RecordingSession

pytestmark = pytest.mark.anyio


def table(link: Link | None = None, ack_timeout: float = 10.0) -> CallTable:
    return CallTable(link or Link(), ack_timeout=ack_timeout, url="ws://test/")  # type: ignore[arg-type]


async def test_ids_continue_after_the_handshakes_and_packets_carry_them() -> None:
    calls, sink = table(), RecordingSession()
    assert calls.next_id() == 1
    first = calls.send(sink, "echo", {"a": 1})
    second = calls.send(sink, "#publish", None)
    assert (first.cid, second.cid, len(calls)) == (2, 3, 2)
    assert sink.packets == [
        {"event": "echo", "data": {"a": 1}, "cid": 2},
        {"event": "#publish", "cid": 3},
    ]


async def test_a_response_completes_its_call_only() -> None:
    calls, sink = table(), RecordingSession()
    first, second = calls.send(sink, "a", None), calls.send(sink, "b", None)
    calls.resolve(Response(rid=second.cid, data="second"))
    calls.resolve(Response(rid=99, data="nobody"))
    calls.resolve(Response(rid=first.cid + 0.5, data="not an id"))
    assert await calls.result(second) == "second"
    assert not first.done.is_set() and len(calls) == 1
    calls.resolve(Response(rid=float(first.cid), data="first"))
    assert await calls.result(first) == "first"
    assert len(calls) == 0


async def test_an_error_response_raises_the_servers_error() -> None:
    calls = table()
    call = calls.send(RecordingSession(), "fail", None)
    calls.resolve(Response(rid=call.cid, error={"name": "MyError", "message": "boom", "code": "E1"}))
    with pytest.raises(RemoteError) as caught:
        await calls.result(call)
    assert (caught.value.name, caught.value.message, caught.value.fields) == (
        "MyError",
        "boom",
        {"code": "E1"},
    )


async def test_a_disconnect_fails_every_pending_call() -> None:
    calls, sink = table(), RecordingSession()
    pending = [calls.send(sink, "x", i) for i in range(3)]
    calls.fail_all(4000, "Server ping timed out")
    assert len(calls) == 0
    for call in pending:
        with pytest.raises(ConnectionClosedError) as caught:
            await calls.result(call)
        assert (caught.value.code, caught.value.reason) == (4000, "Server ping timed out")


async def test_a_cancelled_wait_leaves_no_entry() -> None:
    calls = table()
    call = calls.send(RecordingSession(), "x", None)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await calls.result(call)
    assert len(calls) == 0


async def test_a_request_waits_for_a_session_then_returns_the_response() -> None:
    link = Link()
    calls = table(link)
    results: list[Any] = []

    async def request() -> None:
        results.append(await calls.request("echo", 7, timeout=10))

    async with anyio.create_task_group() as tg:
        tg.start_soon(request)
        await anyio.wait_all_tasks_blocked()
        assert len(calls) == 0
        session = link.open()
        await anyio.wait_all_tasks_blocked()
        assert session.packets == [{"event": "echo", "data": 7, "cid": 1}]
        calls.resolve(Response(rid=1, data=7))
    assert results == [7]


async def test_a_request_without_a_connection_times_out() -> None:
    with pytest.raises(AckTimeoutError, match="Event response for echo event timed out"):
        await table().request("echo", None, timeout=0.01)


async def test_a_transmit_without_a_connection_is_refused_after_the_ack_timeout() -> None:
    with pytest.raises(NotConnectedError, match=r"no connection to ws://test/ within 0\.01 s"):
        await table(ack_timeout=0.01).transmit("hello")


async def test_a_transmit_is_queued_without_a_call() -> None:
    link = Link()
    session = link.open()
    calls = table(link)
    await calls.transmit("hello", {"x": 1})
    assert session.packets == [{"event": "hello", "data": {"x": 1}}] and len(calls) == 0
