"""A backend that publishes with hubbub.emitter, as a Django view or a Celery task would: a plain
synchronous script with no event loop (``--asyncio``: the same with AsyncEmitter under asyncio).

    python emitter_script.py --redis URL --channel NAME --count N [--other NAME]
                             [--prefix P | --config hubbub.toml] [--asyncio]

``URL`` is the workers' ``--broker``: ``redis://host:port/db`` or ``redis+cluster://host:port,...``.
Publishes ``{"i": i, "t": <wall clock ms>}`` for i in 0..N-1: the first half with ``publish`` on
NAME, the rest with ``broadcast`` on NAME and ``--other``. Prints one JSON line: the position each
publish returned on NAME (``[offset, epoch]`` or null), in order.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.cluster import ClusterNode

from hubbub.broker import StreamPosition
from hubbub.emitter import AsyncEmitter, Emitter


def _nodes(url: str) -> list[tuple[str, int]]:
    hosts = urlsplit(url).netloc.split(",")
    return [(host.rsplit(":", 1)[0], int(host.rsplit(":", 1)[1])) for host in hosts]


def _message(i: int) -> dict[str, float]:
    return {"i": i, "t": time.time() * 1000}


def _position(position: StreamPosition | None) -> list[Any] | None:
    return None if position is None else [position.offset, position.epoch]


def _emitter(kind: type[Any], client: Any, args: argparse.Namespace) -> Any:
    if args.config:
        return kind.from_config(client, args.config)
    return kind(client, prefix=args.prefix)


def run_sync(args: argparse.Namespace) -> list[Any]:
    if args.redis.startswith("redis+cluster://"):
        nodes = [ClusterNode(host, port) for host, port in _nodes(args.redis)]
        client: redis.Redis | redis.RedisCluster = redis.RedisCluster(startup_nodes=nodes)
    else:
        client = redis.Redis.from_url(args.redis)
    emitter = _emitter(Emitter, client, args)
    positions = []
    for i in range(args.count):
        if i < args.count // 2:
            positions.append(_position(emitter.publish(args.channel, _message(i))))
        else:
            positions.append(_position(emitter.broadcast([args.channel, args.other], _message(i))[0]))
    client.close()
    return positions


async def run_asyncio(args: argparse.Namespace) -> list[Any]:
    if args.redis.startswith("redis+cluster://"):
        nodes = [AsyncClusterNode(host, port) for host, port in _nodes(args.redis)]
        client: redis.asyncio.Redis | redis.asyncio.RedisCluster = redis.asyncio.RedisCluster(
            startup_nodes=nodes
        )
    else:
        client = redis.asyncio.Redis.from_url(args.redis)
    emitter = _emitter(AsyncEmitter, client, args)
    positions = []
    for i in range(args.count):
        if i < args.count // 2:
            positions.append(_position(await emitter.publish(args.channel, _message(i))))
        else:
            positions.append(_position((await emitter.broadcast([args.channel, args.other], _message(i)))[0]))
    await client.aclose()
    return positions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--other", default="emitter-other")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--prefix", default="hubbub:")
    parser.add_argument("--config")
    parser.add_argument("--asyncio", action="store_true")
    args = parser.parse_args()
    positions = asyncio.run(run_asyncio(args)) if args.asyncio else run_sync(args)
    json.dump(positions, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
