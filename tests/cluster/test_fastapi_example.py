"""docs/asyncio.md's FastAPI example runs: uvicorn serves it, an HTTP POST publishes, the official client receives."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
INTEROP = ROOT / "tests" / "interop"
sys.path.insert(0, str(ROOT / "tests"))
from conftest import free_port, official_subscriber, start_process, stop_and_close  # noqa: E402

pytestmark = pytest.mark.interop


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "asyncio.md").read_text(), re.S)
    (web,) = [b for b in blocks if b.startswith("# web.py")]
    return web


def _post(url: str, body: dict[str, str]) -> httpx.Response:
    """POST, retrying while uvicorn is still binding its port (its lifespan ran first)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return httpx.post(url, json=body, timeout=5)
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.timeout(60)
def test_fastapi_route_publishes_to_the_official_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "web.py").write_text(_example())
    http_port = free_port()
    monkeypatch.setenv("HUBBUB_PORT", str(free_port()))
    cmd = [sys.executable, "-m", "uvicorn", "web:api", "--host", "127.0.0.1", "--port", str(http_port)]
    web = start_process(cmd, cwd=tmp_path)
    try:
        with official_subscriber(web.url, "room/lobby") as next_event:
            answer = _post(f"http://127.0.0.1:{http_port}/rooms/lobby/messages", {"text": "hello from HTTP"})
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"channel": "room/lobby"}
            assert next_event() == {"event": "message", "data": {"text": "hello from HTTP"}}
        where = httpx.get(f"http://127.0.0.1:{http_port}/hubbub", timeout=5).json()
        assert where == {"url": web.url}
    finally:
        stop_and_close([web])
