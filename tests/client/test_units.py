"""Pieces of the client that need no server: backoff, buffers, token stores, URLs, errors."""

from __future__ import annotations

import random
import stat
from pathlib import Path

import anyio
import pytest

from hubbub.client import (
    AckTimeoutError,
    ChannelOverflowError,
    ClientError,
    FileTokenStore,
    MemoryTokenStore,
    Overflow,
    ReconnectOptions,
    RemoteError,
    SCError,
)
from hubbub.client._auth import token_payload
from hubbub.client._buffer import MessageBuffer
from hubbub.client._channel import SubscribeOptions
from hubbub.client._websocket import normalize_url

# header {"alg":"HS256","typ":"JWT"}, payload {"username":"alice","iat":1795273554,"exp":1795359954}
TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJ1c2VybmFtZSI6ImFsaWNlIiwiaWF0IjoxNzk1MjczNTU0LCJleHAiOjE3OTUzNTk5NTR9."
    "signature-not-checked"
)


def test_reconnect_defaults_are_the_official_clients() -> None:
    options = ReconnectOptions()
    assert (options.initial_delay, options.randomness, options.multiplier, options.max_delay) == (
        10,
        10,
        1.5,
        60,
    )


@pytest.mark.parametrize("code", [4000, 4001, 1005])
def test_ping_timeouts_reconnect_at_once_the_first_time(code: int) -> None:
    options = ReconnectOptions(initial_delay=1, randomness=1, multiplier=2, max_delay=100)
    assert options.delay(0, code) == 0
    assert 2 <= options.delay(1, code) <= 4  # type: ignore[operator]


@pytest.mark.parametrize("code", [1000, 4500, 4555, 4999])
def test_final_codes_do_not_reconnect(code: int) -> None:
    assert ReconnectOptions().delay(0, code) is None


@pytest.mark.parametrize("code", [1006, 4003, 4007, 4008, 4100, 1001])
def test_other_codes_back_off(code: int) -> None:
    options = ReconnectOptions(initial_delay=1, randomness=0.5, multiplier=1.5, max_delay=3)
    rng = random.Random(7)
    for attempt in range(8):
        delay = options.delay(attempt, code, rng)
        low, high = options.bounds(attempt)
        assert delay is not None and low <= delay <= high <= 3


def test_backoff_is_jittered() -> None:
    options = ReconnectOptions(initial_delay=1, randomness=1)
    rng = random.Random(1)
    assert len({options.delay(0, 1006, rng) for _ in range(20)}) > 10


def test_subscribe_payload_matches_the_official_client() -> None:
    assert SubscribeOptions().wire("room") == {"channel": "room"}
    assert SubscribeOptions(data={"a": 1}, wait_for_auth=True).wire("p") == {
        "channel": "p",
        "waitForAuth": True,
        "data": {"a": 1},
    }
    assert SubscribeOptions(data=0, priority=5).wire("x") == {"channel": "x"}  # falsy data is not sent


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("overflow", "expected", "error"),
    [
        (Overflow.DROP_OLDEST, [2, 3, 4], StopAsyncIteration),
        (Overflow.DROP_NEWEST, [0, 1, 2], StopAsyncIteration),
        (Overflow.ERROR, [0, 1, 2], ChannelOverflowError),
    ],
)
async def test_buffer_overflow_policies(
    overflow: Overflow, expected: list[int], error: type[BaseException]
) -> None:
    buffer: MessageBuffer[int] = MessageBuffer(3, overflow)
    for i in range(5):
        buffer.put(i)
    buffer.close()
    got = [await buffer.get() for _ in expected]
    assert got == expected
    assert buffer.dropped == (2 if overflow is not Overflow.ERROR else 1)
    with pytest.raises(error):
        await buffer.get()


@pytest.mark.anyio
async def test_buffer_get_waits_for_put() -> None:
    buffer: MessageBuffer[str] = MessageBuffer(1)
    got: list[str] = []

    async def reader() -> None:
        got.append(await buffer.get())

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.wait_all_tasks_blocked()
        buffer.put("x")
    assert got == ["x"]


def test_buffer_rejects_zero_size() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MessageBuffer(0)


def test_memory_token_store() -> None:
    store = MemoryTokenStore()
    assert store.load() is None
    store.save("t")
    assert store.load() == "t"
    store.clear()
    assert store.load() is None


def test_file_token_store(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "token"
    store = FileTokenStore(path)
    assert store.load() is None
    store.save(TOKEN)
    assert FileTokenStore(path).load() == TOKEN
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store.save("second")
    assert store.load() == "second"
    store.clear()
    store.clear()
    assert store.load() is None
    assert list(path.parent.iterdir()) == []


def test_token_payload_is_decoded_without_verification() -> None:
    assert token_payload(TOKEN) == {"username": "alice", "iat": 1795273554, "exp": 1795359954}
    assert token_payload(None) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://localhost:8000", "ws://localhost:8000/socketcluster/"),
        ("ws://localhost:8000/", "ws://localhost:8000/socketcluster/"),
        ("ws://h:1/?reject=1", "ws://h:1/socketcluster/?reject=1"),
        ("wss://h/custom/path/", "wss://h/custom/path/"),
    ],
)
def test_url_default_path(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


def test_url_must_be_websocket() -> None:
    with pytest.raises(ValueError, match="ws://"):
        normalize_url("http://localhost:8000/")


def test_error_tree() -> None:
    error = RemoteError("boom", "MyError", code="E1")
    assert isinstance(error, SCError) and isinstance(error, ClientError)
    assert (error.name, error.message, error.fields) == ("MyError", "boom", {"code": "E1"})
    assert str(error) == "MyError: boom"
    assert issubclass(AckTimeoutError, TimeoutError)
