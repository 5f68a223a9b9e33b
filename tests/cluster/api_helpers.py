"""Calling the HTTP server API from tests: real HTTP requests, in a thread so trio keeps running."""

from __future__ import annotations

import http.client
import json
import re
from typing import Any
from urllib.parse import urlsplit

import trio

from .conftest import Cluster

KEY = "api-test-key"
API_LINE = re.compile(r"hubbub api on (http://\S+)")


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 10.0) -> tuple[int, str]:
    """``POST`` ``body`` to ``url``: (status, body text)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request("POST", parts.path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


async def call(
    base: str,
    method: str,
    payload: Any = None,
    *,
    key: str | None = KEY,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """Call ``method`` at ``base`` (``http://host:port``): (HTTP status, the JSON answer or the text)."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        sent["X-API-Key"] = key
    data = body if body is not None else json.dumps(payload if payload is not None else {}).encode()
    status, text = await trio.to_thread.run_sync(post, f"{base}/api/{method}", data, sent)
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


async def result(base: str, method: str, payload: Any = None) -> Any:
    """The ``result`` of a call that must succeed."""
    status, answer = await call(base, method, payload)
    assert status == 200, (status, answer)
    assert isinstance(answer, dict) and "result" in answer, answer
    return answer["result"]


def api_base(cluster: Cluster) -> str:
    """Where a cluster started with ``--api-port`` takes API calls (``http://host:port``)."""
    for line in cluster.lines:
        match = API_LINE.search(line)
        if match:
            return match.group(1).removesuffix("/api")
    raise AssertionError("no 'hubbub api on' line:\n" + cluster.output())
