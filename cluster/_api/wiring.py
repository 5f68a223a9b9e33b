"""Builds the server API of one worker: control path, node record, methods, HTTP service."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio

from hubbub import __version__
from hubbub.broker import Broker, MemoryBroker, SharedValues

from .._config import ServerConfig
from .._control import ControlPath
from .._hub import Hub
from .._loop import Spawner
from .._nodes import NodeRegistry
from .._publisher import Publisher
from .._transport.exchange import Exchanges
from .._transport.listen import accept_loop
from .._users import UserIndex
from .cluster import ClusterOps
from .idempotency import Idempotency
from .methods import Methods
from .openapi import document_bytes
from .service import DOCUMENT_PATH, PREFIX, ApiService

__all__ = ["DOCUMENT_PATH", "PREFIX", "ServerApi", "WorkerView", "is_api_request"]

log = logging.getLogger("hubbub.api")


def is_api_request(head: bytes) -> bool:
    """Whether a request head (through its last header line) is a call of the server API."""
    return head.startswith(b"POST /api/")


@dataclass(frozen=True, slots=True)
class WorkerView:
    """What a node record tells of a worker, read when the record is written."""

    worker_id: Callable[[], int | None]
    connections: Callable[[], int]
    hub: Hub
    users: UserIndex[Any]


class ServerApi:
    """The server API of one worker; :meth:`run` keeps its control subscriptions and node record."""

    def __init__(
        self,
        config: ServerConfig,
        broker: Broker,
        publisher: Publisher,
        view: WorkerView,
        nursery: Spawner,
    ) -> None:
        assert config.api_key, "the server API needs an API key"
        self._started = time.time()
        self._view = view
        self.uid = os.urandom(8).hex()
        self.control = ControlPath(broker, self.uid, nursery)
        # A broker without shared values: this process's own (the worker then knows only itself).
        values = broker if isinstance(broker, SharedValues) else MemoryBroker()
        self.nodes = NodeRegistry(values, self.uid, config.node_ttl, self.describe)
        for channel, receive in zip(
            self.control.channels, (self.control.receive, self.control.receive_answer), strict=True
        ):
            view.hub.system[channel] = receive
        ops = ClusterOps(self.control, self.nodes, view.users, view.hub.channel_counts)
        methods = Methods(config, publisher, ops, Idempotency(values, config.api_idempotency_window))
        self.service = ApiService(config.api_key, methods, document_bytes())
        self.exchanges = Exchanges(
            self.service.answer,
            config.max_request_head,
            config.api_max_body,
            config.handshake_timeout,
            self.service.refused,
        )

    def describe(self) -> dict[str, Any]:
        """This worker's node record."""
        hub, host, pid = self._view.hub, socket.gethostname(), os.getpid()
        return {
            "uid": self.uid,
            "name": f"{host}:{pid}",
            "host": host,
            "pid": pid,
            "worker": self._view.worker_id(),
            "version": __version__,
            "num_clients": self._view.connections(),
            "num_users": len(self._view.users),
            "num_channels": hub.channel_count,
            "num_subs": hub.subscription_count,
            "uptime": int(time.time() - self._started),
        }

    async def run(self) -> None:
        """Subscribe the control channels, then refresh the node record until cancelled."""
        await self.control.subscribe()
        await self.nodes.run()

    async def serve_listener(self, listener: socket.socket) -> None:
        """Serve the API alone on ``listener`` (``api_port``) until cancelled."""

        async def handle(raw: socket.socket, address: object) -> None:
            del address
            try:
                await self.exchanges.serve(raw)
            except Exception:
                log.exception("api: a connection failed")
            finally:
                raw.close()

        async with anyio.create_task_group() as nursery:
            await accept_loop(listener, handle, nursery)

    async def leave(self) -> None:
        """This worker stops: take its node record out."""
        await self.nodes.leave()
