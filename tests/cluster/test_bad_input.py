"""Bad input never takes a worker down: a real ``hubbub run`` process, real TCP, hostile peers.

Every case ends with :func:`assert_serves`: a fresh client connects, handshakes, subscribes,
publishes and receives its own publication from the same server process. Waits are bounded
``recv`` calls on frames, closes and EOFs; nothing sleeps to synchronise.
"""

from __future__ import annotations

import http.client
import itertools
import json
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.sync.client import ClientConnection, connect
from websockets.uri import parse_uri

TIMEOUT = 5.0


# -- a SocketCluster peer on the websockets sync client ---------------------------------------


class Peer:
    """A JSON-codec SocketCluster client: packets in and out, pings answered while receiving."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._cids = itertools.count(1)
        self.last_cid = 0
        self.pings = 0

    def send(self, packet: Any) -> None:
        self.ws.send(json.dumps(packet))

    def recv(self, timeout: float = TIMEOUT, *, pong: bool = True) -> Any:
        """The next packet; heartbeats (empty frames) are counted, answered, and skipped."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.ws.recv(timeout=max(0.0, deadline - time.monotonic()))
            if message == "":
                self.pings += 1
                if pong:
                    self.ws.send("")
                continue
            return json.loads(message)

    def request(self, event: str, data: Any = None) -> int:
        cid = self.last_cid = next(self._cids)
        self.send({"event": event, "data": data, "cid": cid})
        return cid

    def invoke(self, event: str, data: Any = None, timeout: float = TIMEOUT) -> dict[str, Any]:
        """Send a request; the next packet must be its response (nothing else may come first)."""
        cid = self.request(event, data)
        packet = self.recv(timeout)
        assert isinstance(packet, dict) and packet.get("rid") == cid, f"expected rid {cid}, got {packet!r}"
        return packet

    def handshake(self) -> dict[str, Any]:
        reply = self.invoke("#handshake", {"authToken": None})
        assert "error" not in reply, reply
        assert isinstance(reply["data"]["id"], str)
        return reply

    def echo_works(self) -> None:
        """The connection is usable: an RPC is answered, and its answer is the next packet."""
        marker = uuid.uuid4().hex
        assert self.invoke("echo", {"marker": marker}) == {"rid": self.last_cid, "data": {"marker": marker}}


@contextmanager
def client(url: str, **kwargs: Any) -> Iterator[ClientConnection]:
    options: dict[str, Any] = {
        "open_timeout": TIMEOUT,
        "close_timeout": 2,
        "ping_interval": None,
        "compression": None,
        "max_size": None,
        **kwargs,
    }
    with connect(url, **options) as ws:
        yield ws


@contextmanager
def peer(url: str, **kwargs: Any) -> Iterator[Peer]:
    with client(url, **kwargs) as ws:
        yield Peer(ws)


def expect_close(ws: ClientConnection, timeout: float = TIMEOUT) -> int:
    """Read until the server closes; return its close code (fails if the TCP ended without one)."""
    deadline = time.monotonic() + timeout
    closed: ConnectionClosed | None = None
    while closed is None:
        try:
            ws.recv(timeout=max(0.0, deadline - time.monotonic()))
        except ConnectionClosed as exc:
            closed = exc
    assert closed.rcvd is not None, f"connection ended without a close frame: {closed!r}"
    return closed.rcvd.code


def assert_serves(server: Any) -> None:
    """A fresh client handshakes, subscribes, publishes and receives its own publication."""
    assert server.proc.poll() is None, "the worker died:\n" + "\n".join(server.lines)
    channel = f"fresh-{uuid.uuid4().hex[:8]}"
    with peer(server.url) as p:
        p.handshake()
        assert p.invoke("#subscribe", {"channel": channel}) == {"rid": p.last_cid}
        cid = p.request("#publish", {"channel": channel, "data": {"hello": channel}})
        acked = delivered = False
        while not (acked and delivered):
            packet = p.recv()
            if packet.get("rid") == cid:
                assert "error" not in packet, packet
                acked = True
            elif packet.get("event") == "#publish":
                assert packet["data"] == {"channel": channel, "data": {"hello": channel}}
                delivered = True
            else:
                raise AssertionError(f"unexpected packet {packet!r}")
    assert server.proc.poll() is None


# -- a byte-level WebSocket client (sans-I/O) ------------------------------------------------


class RawWs:
    """A WebSocket client on a plain socket: any frame may be sent, reading happens only on demand."""

    def __init__(self, url: str, *, rcvbuf: int | None = None) -> None:
        uri = parse_uri(url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so the advertised window stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect((uri.host, uri.port))
        self.proto = ClientProtocol(uri, max_size=None)
        self.proto.send_request(self.proto.connect())
        self.flush()
        self._events: list[Any] = []
        self.eof = False
        response = self.next_event()
        assert isinstance(response, Response) and response.status_code == 101, response
        self._cids = itertools.count(1)

    def flush(self) -> None:
        for chunk in self.proto.data_to_send():
            if chunk:
                self.sock.sendall(chunk)

    def send_text(self, data: bytes) -> None:
        self.proto.send_text(data)
        self.flush()

    def send_packet(self, packet: Any) -> None:
        self.send_text(json.dumps(packet).encode())

    def next_event(self, timeout: float = TIMEOUT) -> Any:
        """The next parsed event (Response or Frame); None on EOF or a reset connection."""
        deadline = time.monotonic() + timeout
        while not self._events:
            if self.eof:
                return None
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if data:
                self.proto.receive_data(data)
            else:
                self.eof = True
                self.proto.receive_eof()
            self._events.extend(self.proto.events_received())
            self.flush_quietly()
        return self._events.pop(0)

    def flush_quietly(self) -> None:
        try:
            self.flush()
        except OSError:
            pass

    def next_packet(self, timeout: float = TIMEOUT) -> Any:
        """The next data packet, skipping heartbeats; fails on a close or EOF."""
        while True:
            event = self.next_event(timeout)
            assert isinstance(event, Frame), f"expected a frame, got {event!r}"
            assert event.opcode in (Opcode.TEXT, Opcode.BINARY), f"unexpected frame {event!r}"
            if event.data:
                return json.loads(bytes(event.data))

    def invoke(self, event: str, data: Any = None) -> dict[str, Any]:
        cid = next(self._cids)
        self.send_packet({"event": event, "data": data, "cid": cid})
        packet = self.next_packet()
        assert isinstance(packet, dict) and packet.get("rid") == cid, packet
        return packet

    def drain_until_close(self, timeout: float = TIMEOUT) -> tuple[list[Any], int | None]:
        """Read everything until the connection ends: (data frames, close code or None if dropped)."""
        frames: list[Any] = []
        deadline = time.monotonic() + timeout
        while True:
            event = self.next_event(max(0.001, deadline - time.monotonic()))
            if event is None:
                return frames, None
            if isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                return frames, Close.parse(bytes(event.data)).code
            if isinstance(event, Frame) and event.data:
                frames.append(event)

    def assert_server_ends_tcp(self, timeout: float = 2.0) -> None:
        """After the close frames, the server ends the TCP connection without waiting for us."""
        event = self.next_event(timeout)
        assert event is None, f"expected EOF, got {event!r}"

    def close(self) -> None:
        self.sock.close()


def read_until_eof(sock: socket.socket, timeout: float = TIMEOUT) -> bytes:
    """Everything the server sends until it closes the connection (fails if it does not in time)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    received = b""
    while True:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def http_get(server: Any, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), response.getheader("Content-Type", "")
    finally:
        conn.close()


# -- frames and packets ----------------------------------------------------------------------


def test_oversized_frame_closes_1009(start_server: Callable[..., Any]) -> None:
    server = start_server("--max-payload", "4096")
    with peer(server.url) as p:
        p.handshake()
        p.echo_works()  # a message just under the limit is fine
        p.send({"event": "echo", "data": "x" * 5000, "cid": 99})
        assert expect_close(p.ws) == 1009
    assert_serves(server)


def test_oversized_fragmented_message_closes_1009(start_server: Callable[..., Any]) -> None:
    server = start_server("--max-payload", "4096")
    raw = RawWs(server.url)
    try:
        raw.invoke("#handshake", {"authToken": None})
        payload = json.dumps({"event": "echo", "data": "y" * 6000, "cid": 2}).encode()
        raw.proto.send_text(payload[:3000], fin=False)
        raw.proto.send_continuation(payload[3000:], fin=True)
        raw.flush()
        assert raw.drain_until_close()[1] == 1009
        raw.assert_server_ends_tcp()
    finally:
        raw.close()
    assert_serves(server)


def test_invalid_utf8_closes_1007(start_server: Callable[..., Any]) -> None:
    server = start_server()
    raw = RawWs(server.url)
    try:
        raw.invoke("#handshake", {"authToken": None})
        raw.send_text(b'{"event":"echo","data":"\xff\xfe","cid":2}')
        frames, code = raw.drain_until_close()
        assert code == 1007
        assert frames == []  # the message was not processed
        raw.assert_server_ends_tcp()
    finally:
        raw.close()
    assert_serves(server)


def test_non_json_text_is_ignored(start_server: Callable[..., Any]) -> None:
    server = start_server()
    with peer(server.url) as p:
        p.handshake()
        for junk in ("this is not json", "{broken json", "[1, 2", "42", '"a string"', "null"):
            p.ws.send(junk)
        p.ws.send(b"\x00\x01\x02 binary junk")
        p.echo_works()  # nothing was answered to the junk: the echo reply is the very next packet
    assert_serves(server)


def test_unknown_event_invoke_gets_invalid_action_error(start_server: Callable[..., Any]) -> None:
    server = start_server()
    with peer(server.url) as p:
        p.handshake()
        reply = p.invoke("noSuchProcedure", {"a": 1})
        assert reply["error"]["name"] == "InvalidActionError", reply
        assert "data" not in reply
        p.echo_works()
    assert_serves(server)


def test_unknown_event_transmit_is_ignored(start_server: Callable[..., Any]) -> None:
    server = start_server()
    with peer(server.url) as p:
        p.handshake()
        p.send({"event": "noSuchReceiver", "data": {"a": 1}})
        p.send({"event": "#noSuchReservedEvent", "data": None})
        p.echo_works()  # no error or other packet came back for the transmits
    assert_serves(server)


def test_unknown_rid_is_ignored(start_server: Callable[..., Any]) -> None:
    server = start_server()
    with peer(server.url) as p:
        p.handshake()
        p.send({"rid": 12345, "data": "who asked?"})
        p.send({"rid": 777, "error": {"name": "Error", "message": "nobody called"}})
        p.send({"rid": "not-a-number", "data": 1})
        p.echo_works()
    assert_serves(server)


# -- the handshake ---------------------------------------------------------------------------


def test_silent_tcp_client_is_closed_after_handshake_timeout(start_server: Callable[..., Any]) -> None:
    server = start_server("--handshake-timeout", "0.5")
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        assert read_until_eof(sock, timeout=3) == b""
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 3, elapsed
    assert_serves(server)


def test_upgraded_client_without_handshake_gets_4005(start_server: Callable[..., Any]) -> None:
    server = start_server("--handshake-timeout", "0.5")
    started = time.monotonic()
    with client(server.url) as ws:
        assert expect_close(ws, timeout=3) == 4005
    assert 0.4 <= time.monotonic() - started < 3
    assert_serves(server)


def test_handshake_without_cid_gets_4008(start_server: Callable[..., Any]) -> None:
    server = start_server()
    with peer(server.url) as p:
        p.send({"event": "#handshake", "data": {"authToken": None}})
        assert expect_close(p.ws) == 4008
    with peer(server.url) as p:  # a string cid is not a cid either
        p.send({"event": "#handshake", "data": {"authToken": None}, "cid": "1"})
        assert expect_close(p.ws) == 4008
    assert_serves(server)


@pytest.mark.parametrize(
    "first",
    [
        {"event": "echo", "data": 1, "cid": 1},
        {"event": "#subscribe", "data": {"channel": "early"}, "cid": 1},
        {"rid": 1, "data": None},
        "not json at all",
    ],
    ids=["invoke", "subscribe", "response", "raw"],
)
def test_message_before_handshake_gets_4009(start_server: Callable[..., Any], first: Any) -> None:
    server = start_server()
    with peer(server.url) as p:
        p.ws.send(first if isinstance(first, str) else json.dumps(first))
        assert expect_close(p.ws) == 4009
    assert_serves(server)


# -- a reader that cannot keep up ------------------------------------------------------------


@pytest.mark.timeout(45)
def _next_publication(reader: Any, channel: str, pad: str) -> int:
    packet = reader.recv(timeout=20)
    assert packet["event"] == "#publish" and packet["data"]["channel"] == channel
    assert packet["data"]["data"]["pad"] == pad
    seq: int = packet["data"]["data"]["seq"]
    return seq


def test_slow_consumer_is_dropped_and_the_channel_keeps_flowing(start_server: Callable[..., Any]) -> None:
    # The hard limit at the soft one: dropped as soon as it is over (flow control's grace is
    # tested in tests/hostile/test_flow_control.py).
    server = start_server(
        "--max-payload", "65536", "--outbound-limit", "1048576", "--outbound-hard-limit", "1048576"
    )
    channel, count, pad = "busy", 300, "z" * 30_000  # ~9 MB: more than the kernel buffers hold

    slow = RawWs(server.url, rcvbuf=4096)
    try:
        slow.invoke("#handshake", {"authToken": None})
        assert slow.invoke("#subscribe", {"channel": channel}) == {"rid": 2}
        # From here on the slow socket reads nothing until every publication is through.
        with peer(server.url, max_queue=None) as reader, peer(server.url) as publisher:
            reader.handshake()
            assert reader.invoke("#subscribe", {"channel": channel}) == {"rid": 2}
            publisher.handshake()

            # The publisher stays at most WINDOW messages ahead of the reading subscriber, so only
            # the socket that never reads can fall behind, however loaded the machine is.
            window, started, acks, seqs = 8, time.monotonic(), [], []
            cids: list[int] = []
            for i in range(count):
                cids.append(
                    publisher.request("#publish", {"channel": channel, "data": {"seq": i, "pad": pad}})
                )
                while len(cids) - len(seqs) > window:
                    seqs.append(_next_publication(reader, channel, pad))
            while len(seqs) < count:
                seqs.append(_next_publication(reader, channel, pad))
            acks = [publisher.recv(timeout=20) for _ in cids]
            assert [a.get("rid") for a in acks] == cids
            assert all("error" not in a for a in acks), [a for a in acks if "error" in a][:1]
            assert time.monotonic() - started < 30
            assert seqs == list(range(count))
            reader.echo_works()

        frames, code = slow.drain_until_close(timeout=15)
        # Either it was still within the close timeout (close frame 4010 after what was queued)
        # or the server had already dropped the TCP connection; either way not everything arrived.
        assert code in (4010, None), code
        delivered = [json.loads(bytes(f.data)) for f in frames]
        assert len([p for p in delivered if p.get("event") == "#publish"]) < count
    finally:
        slow.close()
    assert_serves(server)


# -- HTTP ------------------------------------------------------------------------------------


def test_wrong_path_gets_400(start_server: Callable[..., Any]) -> None:
    server = start_server()
    base = server.url.rsplit("/socketcluster/", 1)[0]
    for path in ("/socketcluster", "/", "/other/", "/socketcluster/x"):
        with pytest.raises(InvalidStatus) as info, client(base + path):
            pass
        assert info.value.response.status_code == 400, path
    assert_serves(server)


def test_health_answers_200_json(start_server: Callable[..., Any]) -> None:
    server = start_server()
    status, body, content_type = http_get(server, "/health")
    assert status == 200
    assert content_type.startswith("application/json")
    assert json.loads(body)["status"] == "ok"
    assert_serves(server)


def test_origins_restrict_the_upgrade(start_server: Callable[..., Any]) -> None:
    server = start_server("--origins", "good.example:*")
    with pytest.raises(InvalidStatus) as info, client(server.url, origin="http://evil.example"):
        pass
    assert info.value.response.status_code == 403
    assert b"Invalid origin: http://evil.example" in info.value.response.body
    with peer(server.url, origin="http://good.example:8080") as p:
        p.handshake()
        p.echo_works()
    assert_serves(server)


_UPGRADE = (
    "GET /socketcluster/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


def _answer_head(server: Any, request: str) -> str:
    """The status line and headers the worker answers ``request`` with."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(request.encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            assert chunk, answer
            answer += chunk
    return answer.split(b"\r\n\r\n", 1)[0].decode()


def test_upgrade_answer_is_rfc6455s_101(start_server: Callable[..., Any]) -> None:
    server = start_server()
    # The key and accept value of RFC 6455 section 1.3; an offered extension is not taken.
    head = _answer_head(server, _UPGRADE + "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
    lines = head.split("\r\n")
    assert lines[0] == "HTTP/1.1 101 Switching Protocols"
    headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines[1:])}
    assert headers == {
        "upgrade": "websocket",
        "connection": "Upgrade",
        "sec-websocket-accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
    }


@pytest.mark.parametrize(
    ("request_text", "status"),
    [
        (_UPGRADE.replace("Version: 13", "Version: 8") + "\r\n", "400"),
        (_UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "short") + "\r\n", "400"),
        (_UPGRADE.replace("Upgrade: websocket\r\n", "") + "\r\n", "426"),
        (_UPGRADE.replace("Connection: Upgrade", "Connection: keep-alive") + "\r\n", "426"),
        (_UPGRADE.replace("HTTP/1.1", "HTTP/1.0") + "\r\n", "505"),
    ],
    ids=["version", "key", "no-upgrade", "no-connection-upgrade", "http-1.0"],
)
def test_invalid_upgrade_gets_websockets_error(
    start_server: Callable[..., Any], request_text: str, status: str
) -> None:
    server = start_server()
    status_line = _answer_head(server, request_text).split("\r\n", 1)[0]
    assert status_line.split(" ")[1] == status, status_line
    assert_serves(server)


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(200)),  # a TLS ClientHello
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET /socketcluster/ HTTP/1.1\r\nHost: x\r\nbroken header line\r\n\r\n",
        b"\xff" * 70_000,
    ],
    ids=["tls", "nonsense", "bad-header", "binary-flood"],
)
def test_garbage_instead_of_http_is_closed(start_server: Callable[..., Any], garbage: bytes) -> None:
    server = start_server()
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        try:
            sock.sendall(garbage)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server already gave up on us: that is a close too
        answer = read_until_eof(sock)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:80]
    assert_serves(server)


# -- limits and heartbeat --------------------------------------------------------------------


def test_socket_channel_limit(start_server: Callable[..., Any]) -> None:
    server = start_server("--socket-channel-limit", "3")
    with peer(server.url) as p:
        p.handshake()
        for name in ("a", "b", "c"):
            assert "error" not in p.invoke("#subscribe", {"channel": name})
        reply = p.invoke("#subscribe", {"channel": "d"})
        assert reply["error"]["name"] == "BrokerError", reply
        assert "channel subscription limit of 3" in reply["error"]["message"]
        assert "error" not in p.invoke("#subscribe", {"channel": "a"})  # already subscribed: fine
        p.echo_works()
    assert_serves(server)


def test_ponging_client_stays_connected(start_server: Callable[..., Any]) -> None:
    server = start_server("--ping-interval", "0.2", "--ping-timeout", "0.6")
    with peer(server.url) as p:
        assert p.handshake()["data"]["pingTimeout"] == 600
        deadline = time.monotonic() + 2.2
        while (left := deadline - time.monotonic()) > 0:
            try:
                packet = p.recv(timeout=left)  # answers every ping on the way
            except TimeoutError:
                break
            raise AssertionError(f"unexpected packet {packet!r}")
        assert p.pings >= 5, p.pings
        p.echo_works()
    assert_serves(server)


def test_silent_client_gets_4001(start_server: Callable[..., Any]) -> None:
    server = start_server("--ping-interval", "0.2", "--ping-timeout", "0.6")
    with peer(server.url) as p:
        p.handshake()
        started = time.monotonic()
        assert expect_close(p.ws, timeout=4) == 4001  # pings arrive, none is answered
        assert time.monotonic() - started >= 0.5
    assert_serves(server)


# -- shutdown --------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_closes_sockets_with_4011_and_exits_0(start_server: Callable[..., Any], signum: int) -> None:
    server = start_server()
    with peer(server.url) as p, peer(server.url) as q:
        p.handshake()
        q.handshake()
        assert "error" not in q.invoke("#subscribe", {"channel": "news"})
        server.proc.send_signal(signum)
        assert expect_close(p.ws) == 4011
        assert expect_close(q.ws) == 4011
    assert server.proc.wait(10) == 0
