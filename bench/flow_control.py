"""Flow control, measured: a flood at one stalled and one reading subscriber (docs/flow-control.md).

One hubbub worker (in-memory broker, no app, default limits unless given) on a free port. One
client sends ``--count`` fire-and-forget publications of ``--size`` bytes as fast as the worker
reads them; one subscriber reads everything (optionally slower, ``--reader-pause`` seconds every
10 messages); one subscriber never reads (4 KB receive buffer). Prints what the reader got, when
the stalled one was closed (4010), how long the flood took and the worker's RSS (peak and end).

Run: ``.venv/bin/python bench/flow_control.py`` (add ``--rounds 5`` for medians).
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parent.parent
OVERFLOW = "outbound buffer overflow, closing with 4010"


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def handshake(ws: Any) -> None:
    ws.send(json.dumps({"event": "#handshake", "data": {}, "cid": 1}))
    json.loads(ws.recv(timeout=10))


def stalled_subscriber(port: int, channel: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(
        b"GET /socketcluster/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    for packet in (
        {"event": "#handshake", "data": {}, "cid": 1},
        {"event": "#subscribe", "data": {"channel": channel}, "cid": 2},
    ):
        payload = json.dumps(packet).encode()
        sock.sendall(bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
    return sock


def one_round(args: argparse.Namespace) -> dict[str, float]:
    cmd = [
        sys.executable,
        "-m",
        "hubbub.cluster",
        "run",
        "--port",
        "0",
        "--log-level",
        "INFO",
        *args.server_args,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    lines: list[str] = []
    port_found = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "listening on" in line:
                port_found.set()

    threading.Thread(target=pump, daemon=True).start()
    if not port_found.wait(30):
        raise SystemExit("the worker did not start:\n" + "".join(lines))
    url = re.search(r"listening on (ws://\S+)", "".join(lines)).group(1)  # type: ignore[union-attr]
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    peak = [rss(proc.pid)]
    before = peak[0]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            peak[0] = max(peak[0], rss(proc.pid))
            sampling.wait(0.02)

    threading.Thread(target=sample, daemon=True).start()
    stalled = stalled_subscriber(port, "flood")
    times: dict[str, float] = {}
    try:
        with (
            connect(url, max_size=None, compression=None) as reader,
            connect(url, max_size=None, compression=None) as publisher,
        ):
            handshake(reader)
            handshake(publisher)
            reader.send(json.dumps({"event": "#subscribe", "data": {"channel": "flood"}, "cid": 2}))
            reader.recv(timeout=10)
            pad = "x" * args.size

            def flood() -> None:
                for i in range(args.count):
                    publisher.send(
                        json.dumps(
                            {"event": "#publish", "data": {"channel": "flood", "data": {"i": i, "pad": pad}}}
                        )
                    )
                times["flood"] = time.monotonic() - started

            started = time.monotonic()
            threading.Thread(target=flood, daemon=True).start()
            seen = []
            while len(seen) < args.count:
                message = reader.recv(timeout=60)
                if message == "":
                    reader.send("")
                    continue
                seen.append(json.loads(message)["data"]["data"]["i"])
                if args.reader_pause and len(seen) % 10 == 0:
                    time.sleep(args.reader_pause)
            times["reader"] = time.monotonic() - started
            deadline = time.monotonic() + 30
            while not any(OVERFLOW in line for line in lines) and time.monotonic() < deadline:
                time.sleep(0.01)
            times["stalled_closed"] = (
                time.monotonic() - started if any(OVERFLOW in line for line in lines) else float("nan")
            )
    finally:
        sampling.set()
        end = rss(proc.pid)
        stalled.close()
        proc.terminate()
        proc.wait(10)
    return {
        "received": len(seen),
        "in_order": float(seen == list(range(args.count))),
        "flood_s": times.get("flood", float("nan")),
        "reader_s": times["reader"],
        "stalled_closed_s": times["stalled_closed"],
        "rss_before_mib": before / 2**20,
        "rss_peak_mib": peak[0] / 2**20,
        "rss_end_mib": end / 2**20,
        "slow_consumer_closes": sum(OVERFLOW in line for line in lines),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--size", type=int, default=16_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reader-pause", type=float, default=0.0)
    parser.add_argument("server_args", nargs="*", help="extra `hubbub run` flags, after --")
    args = parser.parse_args()
    results = [one_round(args) for _ in range(args.rounds)]
    for i, result in enumerate(results):
        print(
            f"round {i + 1}: "
            + ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items())
        )
    print("median: " + ", ".join(f"{k}={statistics.median(r[k] for r in results):.2f}" for k in results[0]))


if __name__ == "__main__":
    main()
