"""Run one worker in this process: open the broker, bind, serve until SIGINT/SIGTERM, drain."""

from __future__ import annotations

import gc
import importlib
import os
import signal
import socket as stdsocket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any

import anyio

from hubbub.broker import Broker, BrokerUnavailable, MemoryBroker

from ._app import App
from ._config import ServerConfig
from ._loop import run
from ._server import Server
from ._startup import warn_open_defaults
from ._transport.listen import bind_listener
from ._transport.tls import TlsTerminator
from .settings import Settings

__all__ = [
    "api_url",
    "freeze_startup_objects",
    "listening_url",
    "load_app",
    "open_broker_url",
    "run_worker",
    "serve_until_signalled",
]


def load_app(spec: str | None) -> App:
    """Import ``module:attribute`` and return the :class:`App` it names (a bare App when None).

    The current directory is searched first, as ``python -m`` would, so ``hubbub run --app chat:app``
    finds ``./chat.py`` from the console script too.
    """
    if not spec:
        return App()
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"--app must look like module:attribute, got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    module = importlib.import_module(module_name)
    if not hasattr(module, attribute):
        defined = sorted(name for name, value in vars(module).items() if isinstance(value, App))
        found = f"; its App is {', '.join(defined)}" if defined else "; it defines no App"
        raise ValueError(f"module {module_name} ({module.__file__}) has no attribute {attribute!r}{found}")
    app = getattr(module, attribute)
    if not isinstance(app, App):
        raise ValueError(f"{spec} is not a hubbub App (got {type(app).__name__})")
    return app


class BrokerUnreachable(Exception):
    """The broker did not answer within ``broker_connect_timeout`` at startup."""


@asynccontextmanager
async def open_broker_url(
    url: str | Broker, prefix: str = "hubbub:", timeout: float | None = None
) -> AsyncIterator[Broker]:
    """The broker of ``url`` (opened here, closed on leaving), or ``url`` itself when it is a broker.

    ``timeout``: how long a Redis broker may take to answer at startup (BrokerUnreachable after it).
    """
    if not isinstance(url, str):
        yield url
        return
    if url in ("memory://", "memory"):
        yield MemoryBroker()
        return
    from hubbub.broker import open_broker

    options: dict[str, Any] = {} if timeout is None else {"connect_timeout": timeout, "require_ready": True}
    async with AsyncExitStack() as stack:
        try:
            broker = await stack.enter_async_context(open_broker(url, prefix=prefix, **options))
        except BrokerUnavailable as error:
            raise BrokerUnreachable(f"the broker {error} (broker_connect_timeout)") from None
        yield broker


def run_reporting(fn: Callable[[], Coroutine[Any, Any, None]], loop: str, *, use_uvloop: bool = True) -> int:
    """Run ``fn`` on ``loop``: 0, or 2 with one line on stderr when the broker is unreachable at startup."""
    try:
        run(fn, loop, use_uvloop=use_uvloop)
    except BaseException as error:
        found = error.split(BrokerUnreachable)[0] if isinstance(error, BaseExceptionGroup) else error
        while isinstance(found, BaseExceptionGroup):
            found = found.exceptions[0]
        if not isinstance(found, BrokerUnreachable):
            raise
        print(f"hubbub: {found}", file=sys.stderr, flush=True)
        return 2
    return 0


def listening_url(listener: stdsocket.socket, path: str, tls: bool = False) -> str:
    host, port = listener.getsockname()[:2]
    return f"{'wss' if tls else 'ws'}://{host if ':' not in host else f'[{host}]'}:{port}{path}"


def _print_listening(url: str) -> None:
    print(f"hubbub listening on {url}", flush=True)


async def serve_until_signalled(
    app: App,
    config: ServerConfig,
    listener: stdsocket.socket,
    broker_url: str = "memory://",
    *,
    broker_prefix: str = "hubbub:",
    broker_connect_timeout: float | None = None,
    worker_id: int | None = None,
    drain_timeout: float | None = None,
    status_listener: stdsocket.socket | None = None,
    api_listener: stdsocket.socket | None = None,
    announce: Callable[[str], None] = _print_listening,
    stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve on ``listener`` until SIGINT or SIGTERM (or until ``stop()`` returns), then drain.

    Draining stops accepting, closes every socket with 4011 and waits for them up to
    ``drain_timeout`` seconds (default: ``close_timeout + 1``). ``announce`` is called with the
    ``ws://`` URL once connections are accepted; ``status_listener`` also answers ``/metrics``,
    ``/health`` and ``/ready``; ``api_listener`` serves the HTTP server API (instead of ``listener``).
    """
    from ._metrics import WorkerMetrics, serve_status

    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with (
            open_broker_url(broker_url, broker_prefix, broker_connect_timeout) as broker,
            anyio.create_task_group() as nursery,
        ):
            server = Server(app, config, broker)
            server.worker_id = worker_id
            if not worker_id:  # said once per cluster, by its first worker
                warn_open_defaults(app, config)
            server.api_on_main_port = api_listener is None
            WorkerMetrics(server)
            await nursery.start(server.serve, listener)
            if status_listener is not None:
                nursery.start_soon(serve_status, status_listener, server)
            if api_listener is not None and server.api is not None:
                nursery.start_soon(server.api.serve_listener, api_listener)
            if server.tls is not None:
                await nursery.start(_reload_on_sighup, server.tls)  # installed before we announce
            announce(listening_url(listener, config.path, tls=server.tls is not None))
            async with anyio.create_task_group() as waiting:

                async def until_signal() -> None:
                    async for _ in signals:
                        break
                    waiting.cancel_scope.cancel()

                async def until_stop() -> None:
                    assert stop is not None
                    await stop()
                    waiting.cancel_scope.cancel()

                waiting.start_soon(until_signal)
                if stop is not None:
                    waiting.start_soon(until_stop)
            await server.shutdown(timeout=drain_timeout)
            nursery.cancel_scope.cancel()


async def _reload_on_sighup(
    tls: TlsTerminator, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    with anyio.open_signal_receiver(signal.SIGHUP) as hangups:
        task_status.started()
        async for _ in hangups:
            tls.reload()


def run_worker(
    app: App, config: ServerConfig, broker_url: str = "memory://", *, settings: Settings | None = None
) -> int:
    """Bind ``config.host:config.port`` and serve ``app`` until signalled; returns the exit code.

    ``settings`` adds the broker prefix, the drain timeout and the status listener (metrics port).
    """
    try:
        listener = bind_listener(config.host, config.port)
    except OSError as error:
        print(f"hubbub: cannot listen on {config.host}:{config.port}: {error.strerror}", file=sys.stderr)
        return 2
    extra: dict[str, stdsocket.socket] = {}
    ports = (("metrics", settings.metrics_port), ("api", settings.api_port)) if settings is not None else ()
    for name, port in ports:
        if port is None:
            continue
        try:
            extra[name] = bind_listener(config.host, port)
        except OSError as error:
            for sock in [listener, *extra.values()]:
                sock.close()
            print(f"hubbub: cannot listen on {config.host}:{port}: {error.strerror}", file=sys.stderr)
            return 2
    status, api = extra.get("metrics"), extra.get("api")
    if status is not None:
        print(f"hubbub metrics on {status_url(status)}", flush=True)
    if api is not None:
        print(f"hubbub api on {api_url(api)}", flush=True)
    freeze_startup_objects()
    try:
        return run_reporting(
            partial(
                serve_until_signalled,
                app,
                config,
                listener,
                broker_url,
                broker_prefix=settings.broker_prefix if settings else "hubbub:",
                broker_connect_timeout=settings.broker_connect_timeout if settings else None,
                drain_timeout=settings.drain_timeout if settings else None,
                status_listener=status,
                api_listener=api,
            ),
            config.loop,
            use_uvloop=settings.uvloop if settings else True,
        )
    finally:
        for opened in (listener, *extra.values()):
            opened.close()


def freeze_startup_objects() -> None:
    """Keep what a worker loaded before serving (modules, the app) out of the cycle collector's scans.

    It lives as long as the worker, so scanning it in every full collection is wasted work.
    """
    gc.freeze()


def status_url(listener: stdsocket.socket) -> str:
    host, port = listener.getsockname()[:2]
    return f"http://{host if ':' not in host else f'[{host}]'}:{port}/metrics"


def api_url(listener: stdsocket.socket) -> str:
    """Where the server API's own listener takes calls (``http://host:port/api``)."""
    host, port = listener.getsockname()[:2]
    return f"http://{host if ':' not in host else f'[{host}]'}:{port}/api"
