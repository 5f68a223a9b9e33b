"""Logs of a real worker: one INFO line per socket opened and closed, ``--log-format json``, the
app's exceptions with the procedure's name, DEBUG frames tagged with the socket id, and no token,
key or payload above DEBUG."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from hubbub.client import RemoteError, connect

from ..conftest import RunningProcess
from .conftest import poll

KEY = "log-test-auth-key-0123456789"
PAYLOAD = "payload-that-must-not-be-logged"


def _json_lines(server: RunningProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in list(server.lines) if line.startswith("{")]


async def _session(url: str) -> tuple[str, str]:
    """Open, log in, publish, call a failing procedure, close: the socket id and the token."""
    async with connect(url, auto_reconnect=False) as client:
        socket_id = client.id
        assert socket_id is not None
        await client.invoke("login", {"username": "alice"})
        await client.publish("room", PAYLOAD)
        with pytest.raises(RemoteError):
            await client.invoke("failPlain", PAYLOAD)
        token = client.auth_token
        assert token is not None
    return socket_id, token


@pytest.mark.trio
async def test_connection_lines_in_json(start_server) -> None:
    server = start_server("--log-level", "INFO", "--log-format", "json", "--auth-key", KEY)
    socket_id, token = await _session(server.url)
    closed = await poll(
        lambda: [
            e for e in _json_lines(server) if e.get("event") == "closed" and e["socket_id"] == socket_id
        ],
        "the closed line",
    )
    (opened,) = [e for e in _json_lines(server) if e.get("event") == "opened" and e["socket_id"] == socket_id]
    assert opened["level"] == "INFO" and opened["logger"] == "hubbub.connections"
    assert opened["remote"].startswith("127.0.0.1:")
    assert opened["user_agent"].startswith("hubbub-client/")
    (line,) = closed
    assert (line["code"], line["reason"]) == (1000, "")
    assert 0 < line["duration"] < 30
    assert line["remote"] == opened["remote"]
    (failure,) = [e for e in _json_lines(server) if "procedure 'failPlain' raised" in e["message"]]
    assert failure["message"].startswith(f"socket {socket_id}: ")
    assert failure["level"] == "WARNING" and "plain Error object" in failure["exception"]
    everything = "\n".join(server.lines)
    for secret in (token, KEY, PAYLOAD):
        assert secret not in everything


@pytest.mark.trio
async def test_debug_frames_are_tagged_with_the_socket_id(start_server) -> None:
    server = start_server("--log-level", "DEBUG", "--auth-key", KEY)
    socket_id, _ = await _session(server.url)
    with trio.fail_after(5):
        await poll(
            lambda: any(f"socket {socket_id} closed with 1000" in line for line in server.lines), "close"
        )
    inbound = [line for line in server.lines if f"socket {socket_id} <- " in line]
    outbound = [line for line in server.lines if f"socket {socket_id} -> " in line]
    assert any(PAYLOAD in line for line in inbound)
    assert any("#handshake" in line for line in inbound)
    assert any('"rid"' in line for line in outbound)
    assert all(" DEBUG hubbub.frames: " in line for line in inbound + outbound)
