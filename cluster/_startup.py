"""Startup warnings: what a worker leaves open by default, said once when it starts serving."""

from __future__ import annotations

import logging

from ._app import App
from ._config import ServerConfig
from ._middleware import MiddlewareLine

__all__ = ["open_defaults", "warn_open_defaults"]

log = logging.getLogger("hubbub.server")


def open_defaults(app: App, config: ServerConfig) -> list[str]:
    """One sentence per open default of ``app`` under ``config`` (empty when everything is guarded)."""
    warnings = []
    if config.allow_client_publish and not app.middleware_chains[MiddlewareLine.INBOUND]:
        warnings.append(
            "clients may publish to any channel: the app has no inbound middleware to check publishIn "
            "actions (add @app.middleware('inbound'), or set allow_client_publish = false)"
        )
    if "*:*" in config.origins:
        warnings.append(
            "WebSocket upgrades are accepted from any Origin (origins = *:*): set origins to your sites' "
            "host:port patterns so that other sites' pages cannot connect with your users' cookies"
        )
    return warnings


def warn_open_defaults(app: App, config: ServerConfig) -> None:
    """Log each of :func:`open_defaults` as a WARNING of ``hubbub.server``."""
    for warning in open_defaults(app, config):
        log.warning("%s", warning)
