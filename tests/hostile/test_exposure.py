"""Information exposure: what a client is told never shows the server's internals.

Malformed packets and unknown events get the replies socketcluster-server v20 sends (compared
against it, run from npm), with no traceback, path or Python exception name; an app's failing
procedure or middleware tells the client nothing it did not mean to say; the HTTP error answers
(400, 403, 426, 431, 503, 505) carry fixed texts and no server banner. Each test ends with a fresh
client that handshakes and receives.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from ..cluster import test_bad_input as bad
from ..conftest import ServerFactory, wait_until
from .exposure_app import SECRET_PATH
from .probes import assert_no_traceback, assert_tells_nothing, leaks

HERE = Path(__file__).resolve().parent

#: Malformed or unexpected packets, each sent after a handshake, with cid 2 where they have one.
MALFORMED: dict[str, Any] = {
    "event-number": {"event": 5, "data": 1, "cid": 2},
    "event-list": {"event": ["x"], "data": 1, "cid": 2},
    "subscribe-number": {"event": "#subscribe", "data": 5, "cid": 2},
    "subscribe-null": {"event": "#subscribe", "data": None, "cid": 2},
    "subscribe-channel-number": {"event": "#subscribe", "data": {"channel": 5}, "cid": 2},
    "publish-channel-number": {"event": "#publish", "data": {"channel": 5}, "cid": 2},
    "publish-null": {"event": "#publish", "data": None, "cid": 2},
    "publish-string": {"event": "#publish", "data": "x", "cid": 2},
    "unsubscribe-map": {"event": "#unsubscribe", "data": {}, "cid": 2},
    "unsubscribe-unknown": {"event": "#unsubscribe", "data": "never-subscribed", "cid": 2},
    "authenticate-map": {"event": "#authenticate", "data": {"x": 1}, "cid": 2},
    "authenticate-garbage": {"event": "#authenticate", "data": "a.b.c", "cid": 2},
    "cid-negative": {"event": "echo", "data": 1, "cid": -1},
    "cid-fraction": {"event": "echo", "data": 1, "cid": 1.5},
    "cid-huge": {"event": "echo", "data": 1, "cid": 1e300},
    "cid-null": {"event": "echo", "data": 1, "cid": None},
    "cid-list": {"event": "echo", "data": 1, "cid": [1]},
    "stray-response": {"rid": 2, "error": "x"},
    "empty-object": {},
    "empty-batch": [],
    "batch-with-junk": [{"event": "echo", "data": 1, "cid": 2}, 5, None],
}
#: Where hubbub answers and socketcluster-server does not (it leaves the caller to its ack timeout).
HUBBUB_ONLY = {
    "unknown-procedure": {"event": "noSuchProcedure", "data": 1, "cid": 2},
    "unknown-reserved-event": {"event": "#noSuch", "data": 1, "cid": 2},
}
SOCKET_ID = re.compile(r"Socket \S+ tried")


def _answers(url: str, packet: Any) -> list[Any]:
    """What a fresh, handshaken connection gets for ``packet`` before the reply to an echo after it."""
    with bad.peer(url) as p:
        p.handshake()
        p.ws.send(json.dumps(packet))
        p.send({"event": "echo", "data": "marker", "cid": 99})
        answers = []
        while (answer := p.recv()) != {"rid": 99, "data": "marker"}:
            answers.append(json.loads(SOCKET_ID.sub("Socket <id> tried", json.dumps(answer))))
        return answers


def _errors(answers: list[Any]) -> Iterator[Any]:
    return (answer.get("error") for answer in answers if isinstance(answer, dict))


@pytest.mark.interop
def test_malformed_packets_get_what_socketcluster_sends_and_nothing_internal(
    start_server: Callable[..., Any], official_server: ServerFactory
) -> None:
    server = start_server()
    official = official_server("json")
    for name, packet in MALFORMED.items():
        ours = _answers(server.url, packet)
        assert ours == _answers(official.url, packet), name
        for error in _errors(ours):
            assert_tells_nothing(error)
    for name, packet in HUBBUB_ONLY.items():
        (answer,) = _answers(server.url, packet)
        assert answer["error"]["name"] == "InvalidActionError", (name, answer)
        assert answer["error"]["message"] == f"No procedure is registered for {packet['event']}"
    assert_no_traceback(server)
    bad.assert_serves(server)


@pytest.fixture
def app_server(hubbub_server: ServerFactory, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A worker running tests/hostile/exposure_app.py."""
    monkeypatch.setenv("PYTHONPATH", str(HERE))
    return hubbub_server("json", app="exposure_app:app")


def test_a_plain_exception_is_sent_as_socketcluster_sends_a_plain_error(app_server: Any) -> None:
    with bad.peer(app_server.url) as p:
        p.handshake()
        # As socketcluster-server sends req.error(new Error("...")): the message alone, no name.
        assert p.invoke("plainError") == {"rid": p.last_cid, "error": {"message": "plain Error object"}}
        p.echo_works()
    bad.assert_serves(app_server)


@pytest.mark.parametrize("procedure", ["openFile", "lookUp", "subscript"])
def test_an_apps_unexpected_exception_tells_the_client_nothing(app_server: Any, procedure: str) -> None:
    with bad.peer(app_server.url) as p:
        p.handshake()
        error = p.invoke(procedure)["error"]
        for detail in (SECRET_PATH, "Errno", "internal-acl-table", "NoneType", "subscriptable"):
            assert detail not in json.dumps(error), error
        assert_tells_nothing(error)
        p.echo_works()
    _assert_logged_once(app_server, error["message"], DETAILS[procedure])
    bad.assert_serves(app_server)


#: What the log must hold about each failing procedure (from its exception's text).
DETAILS = {"openFile": SECRET_PATH, "lookUp": "internal-acl-table", "subscript": "NoneType"}


def _assert_logged_once(server: Any, told: str, detail: str) -> None:
    """The reference the client was ``told`` names one WARNING in the log, and the traceback has ``detail``."""
    found = re.search(r"reference ([0-9a-f]{8})", told)
    assert found, told
    reference = found.group(1)
    wait_until(lambda: any(detail in line for line in server.lines), f"{detail!r} in the log")
    logged = [line for line in server.lines if reference in line]
    assert len(logged) == 1 and "WARNING" in logged[0], logged
    start = server.lines.index(logged[0])
    assert server.lines[start + 1].startswith("Traceback"), server.lines[start : start + 3]


@pytest.mark.parametrize(
    ("event", "data"),
    [("middlewareRaises", None), ("#subscribe", {"channel": "middlewareRaises"})],
    ids=["invoke", "subscribe"],
)
def test_a_raising_inbound_middleware_answers_the_call(app_server: Any, event: str, data: Any) -> None:
    with bad.peer(app_server.url) as p:
        p.handshake()
        error = p.invoke(event, data)["error"]
        assert SECRET_PATH not in json.dumps(error) and "internal-acl-table" not in json.dumps(error)
        assert_tells_nothing(error)
        p.echo_works()
    detail = SECRET_PATH if event == "middlewareRaises" else "internal-acl-table"
    _assert_logged_once(app_server, error["message"], detail)
    bad.assert_serves(app_server)


def test_a_raising_handshake_middleware_answers_the_handshake(app_server: Any) -> None:
    with bad.peer(app_server.url + "?boom=1") as p:
        cid = p.request("#handshake", {"authToken": None})
        try:
            reply = p.recv()
        except ConnectionClosed as closed:
            reply = (
                {"rid": cid, "error": {"message": closed.rcvd.reason}}
                if closed.rcvd
                else {"dropped": repr(closed)}
            )
        assert reply.get("rid") == cid and reply.get("error"), reply  # an error reply, or a close code
        assert SECRET_PATH not in json.dumps(reply)
        assert_tells_nothing(reply["error"])
        with pytest.raises(ConnectionClosed) as closed:
            p.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
    _assert_logged_once(app_server, reply["error"]["message"], SECRET_PATH)
    bad.assert_serves(app_server)


def test_a_result_that_cannot_be_encoded_is_answered_with_an_error(app_server: Any) -> None:
    with bad.peer(app_server.url) as p:
        p.handshake()
        reply = p.invoke("unserializable", timeout=3)
        assert reply.get("error"), reply
        assert_tells_nothing(reply["error"])
        p.echo_works()
    reference = reply["error"]["message"].rpartition("reference ")[2].rstrip(")")
    wait_until(lambda: any(reference in line for line in app_server.lines), "the log line")
    logged = [line for line in app_server.lines if reference in line]
    assert len(logged) == 1 and "WARNING" in logged[0] and "could not be encoded" in logged[0], logged
    assert_no_traceback(app_server)
    bad.assert_serves(app_server)


def test_a_batched_result_that_cannot_be_encoded_is_answered_and_the_rest_sent(app_server: Any) -> None:
    with bad.peer(app_server.url) as p:
        p.handshake()
        cid = p.request("unserializableInBatch")
        assert p.recv() == {"event": "batched", "data": 1}
        reply = p.recv()
        assert reply["rid"] == cid and "could not be encoded" in reply["error"]["message"], reply
        assert_tells_nothing(reply["error"])
        p.echo_works()
    assert_no_traceback(app_server)
    bad.assert_serves(app_server)


UPGRADE = bad._UPGRADE
#: Requests the public port refuses, and the status of each answer.
REFUSED = {
    "wrong-path": (UPGRADE.replace("/socketcluster/", "/nope") + "\r\n", 400),
    "metrics": ("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "pipelined": ("GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 2, 400),
    "ws-version": (UPGRADE.replace("Version: 13", "Version: 8") + "\r\n", 400),
    "no-upgrade": (UPGRADE.replace("Upgrade: websocket\r\n", "") + "\r\n", 426),
    "http-1.0": (UPGRADE.replace("HTTP/1.1", "HTTP/1.0") + "\r\n", 505),
    "origin": (UPGRADE + "Origin: http://evil.example\r\n\r\n", 403),
    "malformed-origin": (UPGRADE + "Origin: http://[::1\r\n\r\n", 403),
    "head-too-large": (UPGRADE + "X-Pad: " + "a" * 20_000 + "\r\n\r\n", 431),
    "at-capacity": (UPGRADE + "Origin: http://good.example:1\r\n\r\n", 503),
}


def _answer(server: Any, request: str) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of the worker's answer to ``request``."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=bad.TIMEOUT) as sock:
        sock.sendall(request.encode())
        raw = bad.read_until_eof(sock).decode("latin-1")
    head, _, body = raw.partition("\r\n\r\n")
    status_line, *lines = head.split("\r\n")
    headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
    return int(status_line.split(" ")[1]), headers, body


def test_a_raising_handshake_ws_middleware_answers_the_upgrade_with_401(app_server: Any) -> None:
    request = UPGRADE.replace("/socketcluster/", "/socketcluster/?boom=ws") + "\r\n"
    status, _, body = _answer(app_server, request)
    assert status == 401, (status, body)
    assert SECRET_PATH not in body and not leaks(body), body
    _assert_logged_once(app_server, body, SECRET_PATH)
    bad.assert_serves(app_server)


def test_http_error_answers_tell_nothing_about_the_server(start_server: Callable[..., Any]) -> None:
    server = start_server("--origins", "good.example:*", "--max-connections", "1")
    for name, (request, status) in REFUSED.items():
        with contextlib.ExitStack() as stack:
            if status == 503:  # the one place is taken
                stack.enter_context(bad.peer(server.url, origin="http://good.example:1")).handshake()
            got, headers, body = _answer(server, request)
        assert got == status, (name, got, body)
        assert set(headers) <= {"connection", "content-type", "content-length", "date", "upgrade"}, headers
        assert not leaks(body) and "hubbub" not in body.lower() and "python" not in body.lower(), body
        assert len(body) < 200, (name, body)  # a fixed sentence; never a dump
    assert_no_traceback(server)
    bad.assert_serves(server)


def test_unknown_events_leave_no_log_line(start_server: Callable[..., Any]) -> None:
    """A client's unknown events cost the log nothing: no line per request."""
    server = start_server()
    marker = uuid.uuid4().hex
    with bad.peer(server.url) as p:
        p.handshake()
        for _ in range(200):
            p.send({"event": f"noSuch-{marker}", "data": marker})
            p.request(f"noSuch-{marker}", marker)
        for _ in range(200):
            assert p.recv()["error"]["name"] == "InvalidActionError"
        p.echo_works()
    assert not [line for line in server.lines if marker in line], server.lines[-5:]
    bad.assert_serves(server)
