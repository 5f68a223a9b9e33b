"""Listening sockets: binding one, and the accept loop every listener of a worker runs."""

from __future__ import annotations

import logging
import socket as stdsocket
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

from .._loop import Spawner, current

__all__ = ["accept_loop", "bind_listener"]

log = logging.getLogger("hubbub.server")


def bind_listener(host: str, port: int, backlog: int = 4096) -> stdsocket.socket:
    """A non-blocking listening TCP socket (port 0 picks a free port)."""
    family = stdsocket.AF_INET6 if ":" in host else stdsocket.AF_INET
    sock = stdsocket.socket(family, stdsocket.SOCK_STREAM)
    sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_REUSEADDR, 1)
    sock.setsockopt(stdsocket.IPPROTO_TCP, stdsocket.TCP_NODELAY, 1)  # accepted sockets inherit it
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def _always() -> bool:
    return True


async def accept_loop(
    listener: stdsocket.socket,
    handle: Callable[[stdsocket.socket, Any], Coroutine[Any, Any, None]],
    nursery: Spawner,
    accepting: Callable[[], bool] = _always,
) -> None:
    """Accept connections while ``accepting()`` and run ``handle(raw, address)`` for each in ``nursery``.

    Accepted sockets are non-blocking, with TCP_NODELAY.
    """
    # Linux copies TCP_NODELAY from the listener to accepted sockets; set it per socket only
    # for a listener made elsewhere without it.
    set_nodelay = listener.family != stdsocket.AF_UNIX and not listener.getsockopt(
        stdsocket.IPPROTO_TCP, stdsocket.TCP_NODELAY
    )
    while accepting():
        await current().wait_readable(listener)
        while accepting():
            try:
                raw, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as error:  # e.g. EMFILE: back off instead of spinning
                log.warning("accept failed: %s", error)
                await anyio.sleep(0.1)
                break
            raw.setblocking(False)
            if set_nodelay:
                raw.setsockopt(stdsocket.IPPROTO_TCP, stdsocket.TCP_NODELAY, 1)
            nursery.start_soon(handle, raw, address)
