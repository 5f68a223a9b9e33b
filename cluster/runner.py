"""Run one worker in this process: open the broker, bind, serve until SIGINT/SIGTERM, drain."""

from __future__ import annotations

import importlib
import signal
import socket as stdsocket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from hubbub.broker import Broker, MemoryBroker

from .app import App
from .config import ServerConfig
from .server import Server, bind_listener

__all__ = ["load_app", "run_worker"]


def load_app(spec: str | None) -> App:
    """Import ``module:attribute`` and return the :class:`App` it names (a bare App when None)."""
    if not spec:
        return App()
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"--app must look like module:attribute, got {spec!r}")
    module = importlib.import_module(module_name)
    app = getattr(module, attribute, None)
    if not isinstance(app, App):
        raise ValueError(f"{spec} is not a hubbub App (got {type(app).__name__})")
    return app


@asynccontextmanager
async def _open_broker(url: str) -> AsyncIterator[Broker]:
    if url in ("memory://", "memory"):
        yield MemoryBroker()
        return
    from hubbub import broker as broker_module

    opener = getattr(broker_module, "open_broker", None)
    if opener is None:
        raise ValueError(f"unsupported broker URL {url!r}")
    async with opener(url) as broker:
        yield broker


async def serve_until_signalled(
    app: App, config: ServerConfig, listener: stdsocket.socket, broker_url: str = "memory://"
) -> None:
    """Serve on ``listener`` until SIGINT or SIGTERM, then close every socket and return."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with _open_broker(broker_url) as broker, trio.open_nursery() as nursery:
            server = Server(app, config, broker)
            await nursery.start(server.serve, listener)
            host, port = listener.getsockname()[:2]
            url = f"ws://{host if ':' not in host else f'[{host}]'}:{port}{config.path}"
            print(f"hubbub listening on {url}", flush=True)
            async for _ in signals:
                break
            await server.shutdown()
            nursery.cancel_scope.cancel()


def run_worker(app: App, config: ServerConfig, broker_url: str = "memory://") -> int:
    """Bind ``config.host:config.port`` and serve ``app`` until signalled; returns the exit code."""
    try:
        listener = bind_listener(config.host, config.port)
    except OSError as error:
        print(f"hubbub: cannot listen on {config.host}:{config.port}: {error.strerror}", file=sys.stderr)
        return 2
    try:
        trio.run(serve_until_signalled, app, config, listener, broker_url)
    finally:
        listener.close()
    return 0
