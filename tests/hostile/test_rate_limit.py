"""Flood protection: a socket that sends more messages than its token bucket allows is closed with 4012.

Real worker processes; the bucket is made small (``--message-rate 5 --message-burst 30``) so that a
few dozen messages cross it, and the counter shows on ``/metrics``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from hubbub.cluster.settings import SettingsError, load_settings
from hubbub.protocol import CloseCode

from ..cluster import test_bad_input as bad
from .probes import assert_no_traceback

COUNTER = re.compile(r'^hubbub_rate_limited_disconnects_total(?:\{worker="\d+"\})? (\S+)$', re.MULTILINE)


def _disconnects(server: Any) -> float:
    status, body, _ = bad.http_get(server, "/metrics")
    assert status == 200, body
    (value,) = COUNTER.findall(body.decode())
    return float(value)


def _handshaken(server: Any) -> bad.RawWs:
    ws = bad.RawWs(server.url)
    assert "isAuthenticated" in ws.invoke("#handshake", {"authToken": None})["data"]
    return ws


def test_a_socket_over_its_burst_is_closed_with_4012_and_counted(start_server: Callable[..., Any]) -> None:
    server = start_server("--message-rate", "5", "--message-burst", "30", "--public-metrics", "true")
    assert _disconnects(server) == 0
    ws = _handshaken(server)
    try:
        for i in range(20):  # within the burst: every one is answered
            assert ws.invoke("#publish", {"channel": "c", "data": i})["rid"] == i + 2
        for _ in range(50):  # past it: the socket is closed
            ws.send_packet({"event": "ignored", "data": None})
        _, code = ws.drain_until_close()
        assert code == CloseCode.RATE_LIMITED == 4012
    finally:
        ws.close()
    assert _disconnects(server) == 1
    assert_no_traceback(server)
    bad.assert_serves(server)  # others are served: the limit is per socket


def test_a_rate_of_zero_turns_the_limit_off(start_server: Callable[..., Any]) -> None:
    server = start_server("--message-rate", "0", "--message-burst", "1", "--public-metrics", "true")
    ws = _handshaken(server)
    try:
        for _ in range(100):
            ws.send_packet({"event": "ignored", "data": None})
        assert ws.invoke("#publish", {"channel": "c", "data": 1})["rid"] == 2
    finally:
        ws.close()
    assert _disconnects(server) == 0


def test_the_default_is_generous() -> None:
    config = load_settings({}, {}).server
    assert config.message_rate == 5000 and config.message_burst == 50_000


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [("message_rate", "-1", "must not be negative"), ("message_burst", "0", "must be at least 1")],
)
def test_bad_limits_are_refused_with_the_setting_named(name: str, value: str, said: str) -> None:
    with pytest.raises(SettingsError, match=rf"--{name.replace('_', '-')}: {re.escape(said)}"):
        load_settings({name: value}, {})
