"""Channels with history, measured (issue 12): the cost of a publish, and a recovery storm.

Both scenarios run one hubbub worker on a Redis broker (a redis-server of their own on a free
port, no persistence), a second worker, and clients: hubbub's Python client on trio in this process for ``publish``, the official
JavaScript client in node for ``storm``.

* ``publish``: ``--subscribers`` clients on one channel; one client publishes ``--count`` messages
  (``--window`` in flight). Once on a plain channel, once on a channel with history, alternating,
  ``--rounds`` times. Prints the CPU seconds the worker and redis-server spent per publish (from
  /proc) and the deliveries per second, with medians, and history's ratio to plain.
* ``storm``: ``--storm-clients`` official JavaScript clients (bench/storm.js, recovering as
  docs/recovery-protocol.md shows) subscribed to one history channel on worker A; A is killed (SIGKILL), ``--missed`` messages are published on worker B, A is
  started again on its port and every client reconnects to it at once. Prints the time from A
  listening again until every client has recovered (its ``Resubscribed`` event and all missed
  messages), A's CPU seconds meanwhile, and the Redis commands made per recovered client
  (``INFO commandstats``: the subscribe, position and recovery reads, shared between clients).

Run: ``.venv/bin/python bench/history.py`` (add ``--rounds 5`` for steadier medians).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio

from hubbub.client import Client, connect

ROOT = Path(__file__).resolve().parent.parent
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


def start_worker(config: Path, redis_port: int, port: int = 0) -> tuple[subprocess.Popen[str], str]:
    """A hubbub worker on the Redis broker, and its URL once it listens."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "hubbub.cluster", "run", "--port", str(port), "--config", str(config),
         "--broker", f"redis://127.0.0.1:{redis_port}/0"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert worker.stdout is not None
    line = worker.stdout.readline()
    match = re.search(r"listening on (ws://\S+)", line)
    assert match, line
    return worker, match.group(1)


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


class Servers:
    """A redis-server and two hubbub workers on it, all ours (stopped by PID at the end)."""

    def __init__(self, workdir: Path) -> None:
        self.redis_port = free_port()
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--save", "", "--appendonly", "no",
             "--dir", str(workdir)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        self.config = workdir / "hubbub.toml"
        self.config.write_text(RULES)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.redis_port), 0.1).close()
                break
            except OSError:
                time.sleep(0.02)
        self.worker, self.url = start_worker(self.config, self.redis_port)
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])
        #: A second worker: publishes while the first one is down.
        self.other, self.other_url = start_worker(self.config, self.redis_port)

    def cpu(self) -> tuple[float, float]:
        """CPU seconds of (the first worker, redis-server) so far."""
        return cpu_seconds(self.worker.pid), cpu_seconds(self.redis.pid)

    def kill_worker(self) -> None:
        """SIGKILL the first worker (ours, by PID)."""
        self.worker.kill()
        self.worker.wait(10)
        stop(self.worker)

    def restart_worker(self) -> None:
        self.worker, _ = start_worker(self.config, self.redis_port, self.port)

    def stop(self) -> None:
        for proc in (self.worker, self.other, self.redis):
            stop(proc)


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
        elapsed, (worker, redis) = time.perf_counter() - started, servers.cpu()
        nursery.cancel_scope.cancel()
    return {
        "cpu_us_per_publish": (worker - cpu[0] + redis - cpu[1]) / count * 1e6,
        "worker_us": (worker - cpu[0]) / count * 1e6,
        "redis_us": (redis - cpu[1]) / count * 1e6,
        "deliveries_per_s": count * args.subscribers / elapsed,
    }


async def _client(url: str, task_status: Any = trio.TASK_STATUS_IGNORED, **options: Any) -> None:
    async with connect(url, **options) as client:
        task_status.started(client)
        await trio.sleep_forever()


async def storm(servers: Servers, args: argparse.Namespace) -> dict[str, float]:
    """Clients of a worker that is killed recover at once on its restart: seconds, Redis commands each."""
    channel, missed, n = f"hist/storm-{time.monotonic_ns()}", args.missed, args.storm_clients
    cmd = ["node", str(ROOT / "bench" / "storm.js"), "--url", servers.url, "--channel", channel,
           "--clients", str(n), "--missed", str(missed)]  # fmt: skip
    async with trio.open_nursery() as nursery:
        clients = await trio.lowlevel.open_process(cmd, stdout=subprocess.PIPE)
        assert clients.stdout is not None
        lines = _json_lines(clients.stdout)

        async def expect(event: str, timeout: float = 120) -> dict[str, Any]:
            with trio.fail_after(timeout):
                line = await lines.__anext__()
            assert line["event"] == event, line
            return line

        try:
            await expect("ready")
            publisher = await nursery.start(_client, servers.other_url)
            await publisher.publish(channel, "before")
            await expect("primed")
            servers.kill_worker()
            await expect("cut")
            for i in range(missed):
                await publisher.publish(channel, i)
            commands = redis_commands(servers.redis_port)
            await trio.to_thread.run_sync(servers.restart_worker)
            started, cpu = time.perf_counter(), cpu_seconds(servers.worker.pid)
            outcome = await expect("recovered")
            elapsed = time.perf_counter() - started
            worker_cpu = cpu_seconds(servers.worker.pid) - cpu
            per_client = (redis_commands(servers.redis_port) - commands - 1) / n  # INFO itself counts
        finally:
            clients.kill()
            await clients.wait()
        nursery.cancel_scope.cancel()
    assert outcome["gaps"] == 0, outcome
    return {
        "seconds_until_all_recovered": elapsed,
        "worker_cpu_seconds": worker_cpu,
        "redis_commands_per_client": per_client,
    }


async def _json_lines(stream: trio.abc.ReceiveStream) -> AsyncIterator[dict[str, Any]]:
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield json.loads(line)


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
