"""Channels with history, measured (issue 12): the cost of a publish, and a recovery storm.

Both scenarios run one hubbub worker on a Redis broker (a redis-server of their own on a free
port, no persistence) and clients from this process (hubbub's Python client, on trio).

* ``publish``: ``--subscribers`` clients on one channel; one client publishes ``--count`` messages
  (``--window`` in flight). Once on a plain channel, once on a channel with history, alternating,
  ``--rounds`` times. Prints the CPU seconds the worker and redis-server spent per publish (from
  /proc) and the deliveries per second, with medians, and history's ratio to plain.
* ``storm``: ``--storm-clients`` clients subscribed with ``recover=True`` to one history channel
  lose their connections at once (a relay cuts them), ``--missed`` messages are published, then
  they all reconnect at once. Prints the time from the reconnect until every client has
  recovered (its ``Resubscribed`` event and all missed messages) and the Redis commands made per
  recovered client (``INFO commandstats``).

Run: ``.venv/bin/python bench/history.py`` (add ``--rounds 5`` for steadier medians).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from hubbub.client import Client, Disconnected, ReconnectOptions, Resubscribed, connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "client"))
from relay import open_relay  # noqa: E402  (the test suite's TCP relay, which can cut every client)

RULES = '[[channels]]\nmatch = "hist/*"\nhistory_size = 1000\nhistory_ttl = 600\n'
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def redis_commands(port: int) -> int:
    out = subprocess.run(
        [shutil.which("redis-cli") or "redis-cli", "-p", str(port), "INFO", "commandstats"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return sum(int(m) for m in re.findall(r"calls=(\d+)", out))


class Servers:
    """A redis-server and one hubbub worker on it, both ours (stopped by PID at the end)."""

    def __init__(self, workdir: Path) -> None:
        self.redis_port = free_port()
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--save", "", "--appendonly", "no",
             "--dir", str(workdir)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        config = workdir / "hubbub.toml"
        config.write_text(RULES)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.redis_port), 0.1).close()
                break
            except OSError:
                time.sleep(0.02)
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "hubbub.cluster", "run", "--port", "0", "--config", str(config),
             "--broker", f"redis://127.0.0.1:{self.redis_port}/0"],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert self.worker.stdout is not None
        line = self.worker.stdout.readline()
        match = re.search(r"listening on (ws://\S+)", line)
        assert match, line
        self.url = match.group(1)
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    def cpu(self) -> float:
        return cpu_seconds(self.worker.pid) + cpu_seconds(self.redis.pid)

    def stop(self) -> None:
        for proc in (self.worker, self.redis):
            proc.terminate()
            proc.wait(10)
        if self.worker.stdout is not None:
            self.worker.stdout.close()


async def publish_round(servers: Servers, channel: str, args: argparse.Namespace) -> dict[str, float]:
    """One publish run on ``channel``: CPU per publish (worker + Redis), deliveries per second."""
    count, done = args.count, trio.Event()
    received = [0] * args.subscribers

    async def subscriber(index: int, client: Client, task_status: Any) -> None:
        async with client.subscribe(channel, max_size=count + 10) as messages:
            await messages.wait_subscribed(10)
            task_status.started()
            async for _ in messages:
                received[index] += 1
                if received[index] == count and all(n == count for n in received):
                    done.set()

    async with trio.open_nursery() as nursery:
        clients = []
        for index in range(args.subscribers):
            client = await nursery.start(_client, servers.url)
            clients.append(client)
            await nursery.start(subscriber, index, client)
        publisher = await nursery.start(_client, servers.url)
        window = trio.Semaphore(args.window)
        cpu, started = servers.cpu(), time.perf_counter()

        async def one(i: int) -> None:
            async with window:
                await publisher.publish(channel, {"n": i, "text": "x" * 64})

        async with trio.open_nursery() as publishing:
            for i in range(count):
                await window.acquire()
                window.release()
                publishing.start_soon(one, i)
        with trio.fail_after(120):
            await done.wait()
        elapsed, spent = time.perf_counter() - started, servers.cpu() - cpu
        nursery.cancel_scope.cancel()
    return {"cpu_us_per_publish": spent / count * 1e6, "deliveries_per_s": count * args.subscribers / elapsed}


async def _client(url: str, task_status: Any = trio.TASK_STATUS_IGNORED, **options: Any) -> None:
    async with connect(url, **options) as client:
        task_status.started(client)
        await trio.sleep_forever()


async def storm(servers: Servers, args: argparse.Namespace) -> dict[str, float]:
    """1,000 recovering clients at once: seconds until all recovered, Redis commands per client."""
    channel, missed, n = "hist/storm", args.missed, args.storm_clients
    fast = ReconnectOptions(initial_delay=0.05, randomness=0.05, multiplier=1.5, max_delay=0.5)
    recovered = trio.Event()
    left = [n]
    async with open_relay(servers.port) as relay, trio.open_nursery() as nursery:
        cut_seen = trio.Semaphore(0)

        async def one(task_status: Any) -> None:
            async with connect(relay.url, reconnect=fast) as client, client.events() as events:
                channel_handle = client.subscribe(channel, recover=True, max_size=missed + 10)
                await channel_handle.wait_subscribed(30)
                task_status.started()
                async for event in events:
                    if isinstance(event, Disconnected):
                        cut_seen.release()
                    elif isinstance(event, Resubscribed):
                        assert event.recovered, event
                        for _ in range(missed):
                            await channel_handle.receive()
                        left[0] -= 1
                        if left[0] == 0:
                            recovered.set()
                        await trio.sleep_forever()

        for _ in range(n):
            await nursery.start(one)
        publisher = await nursery.start(_client, servers.url)
        await publisher.publish(channel, "before")
        relay.cut()
        with trio.fail_after(60):
            for _ in range(n):
                await cut_seen.acquire()
        for i in range(missed):
            await publisher.publish(channel, i)
        commands = redis_commands(servers.redis_port)
        started = time.perf_counter()
        relay.resume()
        with trio.fail_after(120):
            await recovered.wait()
        elapsed = time.perf_counter() - started
        per_client = (redis_commands(servers.redis_port) - commands - 1) / n  # INFO itself counts
        nursery.cancel_scope.cancel()
    return {"seconds_until_all_recovered": elapsed, "redis_commands_per_client": per_client}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--storm-clients", type=int, default=1000)
    parser.add_argument("--missed", type=int, default=100)
    parser.add_argument("--only", choices=["publish", "storm"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        servers = Servers(Path(workdir))
        try:
            if args.only != "storm":
                results: dict[str, list[dict[str, float]]] = {"plain": [], "history": []}
                for round_ in range(args.rounds):
                    for kind, name in (("plain", f"plain/{round_}"), ("history", f"hist/{round_}")):
                        figures = trio.run(publish_round, servers, name, args)
                        results[kind].append(figures)
                        print(
                            f"round {round_ + 1} {kind:8s} "
                            + "  ".join(f"{k} {v:,.1f}" for k, v in figures.items())
                        )
                medians = {
                    kind: {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
                    for kind, rounds in results.items()
                }
                for kind, figures in medians.items():
                    print(f"median   {kind:8s} " + "  ".join(f"{k} {v:,.1f}" for k, v in figures.items()))
                ratio = medians["history"]["cpu_us_per_publish"] / medians["plain"]["cpu_us_per_publish"]
                speed = medians["history"]["deliveries_per_s"] / medians["plain"]["deliveries_per_s"]
                print(f"history / plain: CPU per publish {ratio:.2f}x, deliveries per second {speed:.2f}x")
            if args.only != "publish":
                storms = [trio.run(storm, servers, args) for _ in range(args.rounds)]
                for i, figures in enumerate(storms):
                    print(f"storm {i + 1}: " + "  ".join(f"{k} {v:,.2f}" for k, v in figures.items()))
                print(
                    "storm median: "
                    + "  ".join(f"{k} {statistics.median(s[k] for s in storms):,.2f}" for k in storms[0])
                )
        finally:
            servers.stop()


if __name__ == "__main__":
    main()
