"""The worker's status paths: ``/health``, ``/ready`` and ``/metrics``."""

from __future__ import annotations

import os
from collections.abc import Callable

from websockets.http11 import Response

from ._transport.http import json_response, plain_response

__all__ = ["STATUS_PATHS", "status_answer"]

#: The paths :func:`status_answer` answers.
STATUS_PATHS = frozenset({"/health", "/ready", "/metrics"})


def status_answer(
    path: str,
    *,
    details: bool,
    connections: int,
    worker_id: int | None,
    ready: bool,
    metrics: Callable[[], tuple[bytes, str]] | None,
) -> Response | None:
    """The answer to ``/health``, ``/ready`` or ``/metrics`` (None for any other path).

    Without ``details`` only a bare ``/health`` and ``/ready`` are answered, telling nobody pid,
    counters or memory.
    """
    if path == "/health" and not details:
        return json_response(200, "OK", {"status": "ok"})
    if path == "/health":
        status = {"status": "ok", "connections": connections, "worker": worker_id}
        return json_response(200, "OK", {**status, "pid": os.getpid()})
    if path == "/ready":
        code, reason = (200, "OK") if ready else (503, "Service Unavailable")
        return json_response(code, reason, {"ready": ready})
    if path == "/metrics" and metrics is not None and details:
        body, content_type = metrics()
        return plain_response(200, "OK", body, content_type)
    return None
