"""ClientOptions: defaults, validation, and how connect() and connect_blocking() build it."""

from __future__ import annotations

import dataclasses
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from hubbub.client import (
    Client,
    ClientOptions,
    MemoryTokenStore,
    Overflow,
    ReconnectOptions,
    connect,
    connect_blocking,
)


def refused_url() -> str:
    """A URL nothing listens on (a port just bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"ws://127.0.0.1:{port}/socketcluster/"


def test_defaults_are_the_documented_ones() -> None:
    options = ClientOptions()
    assert (options.codec, options.ack_timeout, options.connect_timeout, options.close_timeout) == (
        "json",
        10.0,
        20.0,
        2.0,
    )
    assert (options.auto_reconnect, options.wait_connected, options.protocol_version) == (True, True, 2)
    assert (options.channel_buffer, options.overflow, options.max_message_size) == (
        1000,
        Overflow.DROP_OLDEST,
        2**24,
    )
    assert options.reconnect is None and options.reconnect_policy == ReconnectOptions()


def test_the_documented_defaults_are_the_defaults() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "client.md").read_text(encoding="utf-8")
    shown = re.search(r"```python\n(ClientOptions\(.*?\))\n```", doc, flags=re.S)
    assert shown is not None
    assert eval(shown[1], {"ClientOptions": ClientOptions, "Overflow": Overflow}) == ClientOptions()


def test_options_are_frozen() -> None:
    options = ClientOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.codec = "minbin"  # type: ignore[misc]


def test_options_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        ClientOptions("minbin")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("codec", "msgpack", "codec must be one of 'json', 'minbin'"),
        ("ack_timeout", 0, "ack_timeout must be positive"),
        ("connect_timeout", -1, "connect_timeout must be positive"),
        ("ack_timeout", float("nan"), "ack_timeout must be positive"),
        ("close_timeout", -0.5, "close_timeout must not be negative"),
        ("protocol_version", 3, "protocol_version must be 1 or 2"),
        ("channel_buffer", 0, "channel_buffer must be at least 1"),
        ("max_message_size", 0, "max_message_size must be positive"),
    ],
)
def test_invalid_values_are_refused(field: str, value: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ClientOptions(**{field: value})


def test_edge_values_are_accepted() -> None:
    options = ClientOptions(close_timeout=0, max_message_size=None, protocol_version=1, channel_buffer=1)
    assert (options.close_timeout, options.max_message_size) == (0, None)


@pytest.mark.anyio
async def test_connect_keywords_override_the_options_object() -> None:
    base = ClientOptions(codec="minbin", ack_timeout=3, auto_reconnect=False)
    async with connect(refused_url(), base, ack_timeout=4, wait_connected=False) as client:
        assert client.options == dataclasses.replace(base, ack_timeout=4, wait_connected=False)


@pytest.mark.anyio
async def test_connect_keywords_alone_build_the_options() -> None:
    store = MemoryTokenStore()
    async with connect(
        refused_url(), token_store=store, auth_token="t", auto_reconnect=False, wait_connected=False
    ) as client:
        assert client.options.token_store is store and client.token_store is store
        assert store.load() == "t"


@pytest.mark.anyio
async def test_connect_refuses_unknown_and_invalid_options_before_connecting() -> None:
    with pytest.raises(TypeError, match="ack_timeuot"):
        async with connect(refused_url(), ack_timeuot=1):
            pass
    with pytest.raises(ValueError, match="channel_buffer"):
        async with connect(refused_url(), channel_buffer=0):
            pass


def test_connect_blocking_takes_an_options_object_and_keywords() -> None:
    base = ClientOptions(auto_reconnect=False, wait_connected=False)
    with connect_blocking(refused_url(), base, codec="minbin") as client:
        assert client.client.options == dataclasses.replace(base, codec="minbin")


@pytest.mark.anyio
async def test_the_client_shows_each_option_read_only() -> None:
    reconnect = ReconnectOptions(initial_delay=1)
    client = Client("ws://h:1/", ClientOptions(codec="minbin", ack_timeout=3, reconnect=reconnect))
    assert (client.codec, client.ack_timeout, client.connect_timeout) == ("minbin", 3, 20.0)
    assert client.reconnect_options is reconnect
    assert Client("ws://h:1/").reconnect_options == ReconnectOptions()
    assert Client("ws://h:1/", ack_timeout=5).options == ClientOptions(ack_timeout=5)
    with pytest.raises(AttributeError, match="codec is read-only"):
        client.codec = "json"
    assert client.options.codec == client.codec == "minbin"
