"""websockets' sans-I/O layer against wsproto (+h11) for what a hubbub worker does.

Run: ``.venv/bin/python bench/ws_libs.py`` (about 20-40 s; ``--quick`` for a smoke run); wsproto and h11
are bench-only requirements (``pip install -r bench/requirements.txt``, which ``bench/run.sh`` does).

Measured, each as the median of 5 runs, all in one process with the GC off while timing:

(a) fan-out of one 100-byte text message to N subscribers: framing it once and handing the same bytes
    to N connections, against framing it once per subscriber through each connection's protocol object;
(b) parsing inbound masked client frames (100k small text messages fed in 64 KiB chunks, payload decoded
    to ``str`` so both libraries do UTF-8 validation), and a bulk case (64 KiB messages) for unmasking;
(c) memory per connection of a server protocol object after the handshake (tracemalloc, 1000 objects);
(d) server-side handshake cost: parse the upgrade request, build the 101 response, serialise it.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import struct
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from typing import Any

import h11
import websockets
import wsproto
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as WsRequest
from websockets.server import ServerProtocol
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, TextMessage
from wsproto.events import Request as WsprotoRequest
from wsproto.frame_protocol import FrameProtocol

RUNS = 5
MAX_SIZE = 2**20

# What socketcluster-client 20 (via ws) sends, extension offer included; both servers decline it.
REQUEST = (
    b"GET /socketcluster/ HTTP/1.1\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: xEYwDqw4b7ZQ7r5oYl8IYA==\r\n"
    b"Connection: Upgrade\r\n"
    b"Upgrade: websocket\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    b"Host: 127.0.0.1:8000\r\n"
    b"\r\n"
)

# A realistic 100-byte #publish as the server sends it to subscribers.
MESSAGE = (
    '{"event":"#publish","data":{"channel":"room-42","data":{"from":"alice","text":"hello there world"}}}'
)
assert len(MESSAGE) == 100, len(MESSAGE)


# -- handshakes -------------------------------------------------------------------------------------------


def ws_open() -> ServerProtocol:
    protocol = ServerProtocol(max_size=MAX_SIZE)
    protocol.receive_data(REQUEST)
    [request] = protocol.events_received()
    assert isinstance(request, WsRequest)
    response = protocol.accept(request)
    assert response.status_code == 101
    protocol.send_response(response)
    protocol.data_to_send()
    return protocol


def wsproto_open() -> WSConnection:
    connection = WSConnection(ConnectionType.SERVER)
    connection.receive_data(REQUEST)
    [request] = list(connection.events())
    assert isinstance(request, WsprotoRequest)
    connection.send(AcceptConnection())
    return connection


# -- measurement helpers ----------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of ``fn`` takes, GC off."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        gc.enable()


def median_of(runs: int, fn: Callable[[], Any]) -> float:
    fn()  # warm-up
    return statistics.median(timed(fn) for _ in range(runs))


def masked_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One masked client frame (what every browser/ws client sends)."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 2**16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    key = (mask * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")
    return header + mask + masked


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# -- (a) fan-out ------------------------------------------------------------------------------------------


def bench_fanout(subscribers: int, runs: int) -> dict[str, float]:
    text = MESSAGE
    payload = text.encode()
    ws_conns = [ws_open() for _ in range(subscribers)]
    wp_conns = [wsproto_open() for _ in range(subscribers)]
    outboxes: list[deque[bytes]] = [deque() for _ in range(subscribers)]
    repeat = 200  # single framing is too fast to time alone

    def ws_frame_once() -> None:
        for _ in range(repeat):
            Frame(Opcode.TEXT, payload).serialize(mask=False)

    wp_framer = FrameProtocol(client=False, extensions=[])

    def wp_frame_once() -> None:
        for _ in range(repeat):
            wp_framer.send_data(text, fin=True)

    def raw_frame_once() -> None:  # the floor: header by hand
        for _ in range(repeat):
            struct.pack("!BB", 0x81, len(payload)) + payload

    def ws_once_then_share() -> None:
        data = Frame(Opcode.TEXT, payload).serialize(mask=False)
        for box in outboxes:
            box.append(data)
        for box in outboxes:
            box.clear()

    def wp_once_then_share() -> None:
        data = wp_framer.send_data(text, fin=True)
        for box in outboxes:
            box.append(data)
        for box in outboxes:
            box.clear()

    def ws_per_subscriber() -> None:
        for conn, box in zip(ws_conns, outboxes, strict=True):
            conn.send_text(payload)
            box.extend(conn.data_to_send())
        for box in outboxes:
            box.clear()

    def wp_per_subscriber() -> None:
        for conn, box in zip(wp_conns, outboxes, strict=True):
            box.append(conn.send(TextMessage(data=text)))
        for box in outboxes:
            box.clear()

    return {
        "ws_frame_us": median_of(runs, ws_frame_once) / repeat * 1e6,
        "wp_frame_us": median_of(runs, wp_frame_once) / repeat * 1e6,
        "raw_frame_us": median_of(runs, raw_frame_once) / repeat * 1e6,
        "ws_share_us": median_of(runs, ws_once_then_share) * 1e6,
        "wp_share_us": median_of(runs, wp_once_then_share) * 1e6,
        "ws_each_us": median_of(runs, ws_per_subscriber) * 1e6,
        "wp_each_us": median_of(runs, wp_per_subscriber) * 1e6,
    }


# -- (b) parsing ------------------------------------------------------------------------------------------


def inbound_stream(count: int, size: int) -> tuple[bytes, int]:
    """``count`` masked text frames carrying ``#publish`` packets padded to about ``size`` bytes."""
    frames = []
    total = 0
    for i in range(count):
        head = f'{{"event":"#publish","data":{{"channel":"room-{i % 100}","data":"'
        tail = f'"}},"cid":{i + 1}}}'
        body = (head + "x" * max(0, size - len(head) - len(tail)) + tail).encode()
        total += len(body)
        frames.append(masked_frame(body))
    return b"".join(frames), total


def bench_parse(count: int, size: int, chunk: int, runs: int) -> dict[str, float]:
    stream, _ = inbound_stream(count, size)
    pieces = chunks(stream, chunk)

    def ws_parse() -> None:
        protocol = ws_open()
        received = 0
        for piece in pieces:
            protocol.receive_data(piece)
            for frame in protocol.events_received():
                frame.data.decode()  # hubbub validates UTF-8 itself (websockets' Protocol does not)
                received += 1
        assert received == count, received

    def wp_parse() -> None:
        connection = wsproto_open()
        received = 0
        for piece in pieces:
            connection.receive_data(piece)
            for event in connection.events():
                if isinstance(event, TextMessage) and event.message_finished:
                    received += 1
        assert received == count, received

    ws = median_of(runs, ws_parse)
    wp = median_of(runs, wp_parse)
    megabytes = len(stream) / 1e6
    return {"ws_msgs": count / ws, "wp_msgs": count / wp, "ws_mbs": megabytes / ws, "wp_mbs": megabytes / wp}


# -- (c) memory, (d) handshake ----------------------------------------------------------------------------


def per_connection_bytes(opener: Callable[[], object], count: int) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        kept = [opener() for _ in range(count)]
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(kept) == count
    return (after - before) / count


def bench_memory(count: int, runs: int) -> dict[str, float]:
    ws_open()  # import-time caches out of the way
    wsproto_open()
    return {
        "ws_bytes": statistics.median(per_connection_bytes(ws_open, count) for _ in range(runs)),
        "wp_bytes": statistics.median(per_connection_bytes(wsproto_open, count) for _ in range(runs)),
    }


def bench_handshake(count: int, runs: int) -> dict[str, float]:
    def many(opener: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(count):
                opener()

        return run

    return {
        "ws_us": median_of(runs, many(ws_open)) / count * 1e6,
        "wp_us": median_of(runs, many(wsproto_open)) / count * 1e6,
    }


# -- report -----------------------------------------------------------------------------------------------


def speedups_loaded() -> bool:
    try:
        from websockets import speedups  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    started = time.perf_counter()

    subscribers = 1000
    fan = bench_fanout(subscribers, RUNS)
    small = bench_parse(100_000 // scale, 100, 65536, RUNS)
    bulk = bench_parse(400 // scale, 65536, 65536, RUNS)
    memory = bench_memory(1000 // scale, RUNS)
    handshake = bench_handshake(2000 // scale, RUNS)

    print(
        f"Python {platform.python_version()} ({platform.machine()}), websockets {websockets.__version__}"
        f" (C speedups: {'yes' if speedups_loaded() else 'NO'}), wsproto {_version(wsproto)}, h11 {h11.__version__}"
    )
    print(f"median of {RUNS} runs{' (--quick)' if args.quick else ''}\n")
    rows: list[tuple[str, str, str, str]] = [
        ("measure", "websockets (sans-I/O)", "wsproto + h11", "ws / wsproto"),
        ("(a) frame one 100 B text message", _us(fan["ws_frame_us"]), _us(fan["wp_frame_us"]),
         _ratio(fan["wp_frame_us"], fan["ws_frame_us"])),
        ("    (struct.pack floor)", _us(fan["raw_frame_us"]), "", ""),
        (f"(a) fan-out to {subscribers}: frame once + share", _us(fan["ws_share_us"]), _us(fan["wp_share_us"]),
         _ratio(fan["wp_share_us"], fan["ws_share_us"])),
        (f"(a) fan-out to {subscribers}: frame per subscriber", _us(fan["ws_each_us"]), _us(fan["wp_each_us"]),
         _ratio(fan["wp_each_us"], fan["ws_each_us"])),
        ("    per-subscriber framing / frame once", f"{fan['ws_each_us'] / fan['ws_share_us']:.1f}x",
         f"{fan['wp_each_us'] / fan['wp_share_us']:.1f}x", ""),
        (f"(b) parse {100_000 // scale:,} masked 100 B text frames", _rate(small["ws_msgs"]),
         _rate(small["wp_msgs"]), _ratio(small["ws_msgs"], small["wp_msgs"])),
        ("    throughput", f"{small['ws_mbs']:.0f} MB/s", f"{small['wp_mbs']:.0f} MB/s", ""),
        (f"(b) parse {400 // scale} masked 64 KiB text frames", f"{bulk['ws_mbs']:.0f} MB/s",
         f"{bulk['wp_mbs']:.0f} MB/s", _ratio(bulk["ws_mbs"], bulk["wp_mbs"])),
        ("(c) memory per open connection", f"{memory['ws_bytes'] / 1024:.1f} KiB",
         f"{memory['wp_bytes'] / 1024:.1f} KiB", _ratio(memory["wp_bytes"], memory["ws_bytes"])),
        ("(d) server handshake", _us(handshake["ws_us"]), _us(handshake["wp_us"]),
         _ratio(handshake["wp_us"], handshake["ws_us"])),
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for index, row in enumerate(rows):
        print(
            "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
            )
        )
        if index == 0:
            print("  ".join("-" * w for w in widths))
    print(f"\n(ratio > 1: websockets better)  total {time.perf_counter() - started:.1f} s", file=sys.stderr)


def _version(module: Any) -> str:
    try:
        from importlib.metadata import version

        return version(module.__name__)
    except Exception:
        return "?"


def _us(value: float) -> str:
    return f"{value:,.2f} us" if value < 100 else f"{value:,.0f} us"


def _rate(value: float) -> str:
    return f"{value / 1000:,.0f}k msg/s"


def _ratio(numerator: float, denominator: float) -> str:
    # called as (wsproto cost, websockets cost) or (websockets rate, wsproto rate): > 1 favours websockets
    return f"{numerator / denominator:.2f}x"


if __name__ == "__main__":
    main()
