"""Publish N numbered messages with hubbub's Python client, for the deployment tests.

    python publish.py --url ws://HOST:PORT/socketcluster/ [--url ...] --channel NAME --count N
                      [--codec json|minbin] [--timeout SECONDS]

Connects to every ``--url`` (asking each which worker process it reached: procedure ``worker`` of
tests/cluster/cluster_app.py), then publishes ``{"i": i, "t": wall clock ms}`` for i = 0..N-1, message
i through connection ``i % len(urls)``, each awaiting its acknowledgement before the next, so the
order at the subscriber is the publish order even across connections. Prints one JSON line
``{"event": "done", "pids": [...], "count": N}`` and exits 0; on error or timeout prints
``{"event": "error", ...}`` and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import AsyncExitStack

import trio

from hubbub.client import connect


async def publish(urls: list[str], channel: str, count: int, codec: str) -> list[int]:
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                connect(url, codec=codec, auto_reconnect=False, connect_timeout=5, ack_timeout=5)
            )
            for url in urls
        ]
        pids = [(await client.invoke("worker"))["pid"] for client in clients]
        for i in range(count):
            await clients[i % len(clients)].publish(channel, {"i": i, "t": time.time() * 1000})
        return pids


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", action="append", required=True)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--codec", default="json")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()

    async def bounded() -> list[int]:
        with trio.fail_after(args.timeout):
            return await publish(args.url, args.channel, args.count, args.codec)

    try:
        pids = trio.run(bounded)
    except Exception as exc:
        print(json.dumps({"event": "error", "error": repr(exc)}), flush=True)
        return 2
    print(json.dumps({"event": "done", "pids": pids, "count": args.count}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
