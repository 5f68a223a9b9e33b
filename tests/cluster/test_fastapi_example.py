"""docs/asyncio.md's FastAPI example runs: uvicorn serves it, an HTTP POST publishes, the official client receives."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
INTEROP = ROOT / "tests" / "interop"
sys.path.insert(0, str(ROOT / "tests"))
from conftest import free_port, start_process, stop_and_close  # noqa: E402

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
    node = subprocess.Popen(
        ["node", "subscriber.js", "--url", web.url, "--channel", "room/lobby"],
        cwd=INTEROP,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert node.stdout is not None
        assert json.loads(node.stdout.readline()) == {"event": "ready"}
        answer = _post(f"http://127.0.0.1:{http_port}/rooms/lobby/messages", {"text": "hello from HTTP"})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"channel": "room/lobby"}
        received = json.loads(node.stdout.readline())
        assert received == {"event": "message", "data": {"text": "hello from HTTP"}}
        assert node.wait(10) == 0
        where = httpx.get(f"http://127.0.0.1:{http_port}/hubbub", timeout=5).json()
        assert where == {"url": web.url}
    finally:
        if node.poll() is None:
            node.kill()
        node.wait(5)
        if node.stdout is not None:
            node.stdout.close()
        stop_and_close([web])
