"""The app in README.md runs as shown: ``hubbub run --app chat:app`` and a client can use it."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import start_process  # noqa: E402

TIMEOUT = 5


def _readme_app() -> str:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    (app,) = [b for b in blocks if b.startswith("# chat.py")]
    return app


def _next_packet(ws: Any) -> Any:
    while True:
        message = ws.recv(timeout=TIMEOUT)
        if message == "":  # ping
            ws.send("")
            continue
        return json.loads(message)


def test_readme_app_runs(tmp_path: Path) -> None:
    (tmp_path / "chat.py").write_text(_readme_app())
    server = start_process(
        # The console script, as the README runs it: it must find ./chat.py without PYTHONPATH.
        [
            str(Path(sys.executable).parent / "hubbub"),
            "run",
            "--port",
            "0",
            "--app",
            "chat:app",
            "--auth-key",
            "k",
        ],
        cwd=tmp_path,
    )
    try:
        with connect(server.url, open_timeout=TIMEOUT) as ws:
            ws.send(json.dumps({"event": "#handshake", "data": {"authToken": None}, "cid": 1}))
            assert _next_packet(ws)["data"]["isAuthenticated"] is False
            ws.send(json.dumps({"event": "#subscribe", "data": {"channel": "private/room"}, "cid": 2}))
            blocked = _next_packet(ws)
            assert blocked["rid"] == 2
            assert blocked["error"]["name"] == "NotAuthenticatedError"
            ws.send(json.dumps({"event": "login", "data": {"username": "alice"}, "cid": 3}))
            first, second = _next_packet(ws), _next_packet(ws)
            by_kind = {("rid" in p): p for p in (first, second)}
            assert by_kind[True] == {"rid": 3, "data": "welcome alice"}
            assert by_kind[False]["event"] == "#setAuthToken"
            ws.send(json.dumps({"event": "#subscribe", "data": {"channel": "private/room"}, "cid": 4}))
            assert _next_packet(ws) == {"rid": 4}
            ws.send(json.dumps({"event": "echo", "data": [1, "two"], "cid": 5}))
            assert _next_packet(ws) == {"rid": 5, "data": [1, "two"]}
    finally:
        assert server.stop() == 0


def test_readme_recovery_snippet_runs(tmp_path: Path) -> None:
    """The README's recovery lines, run as written inside a client block, get publications with offsets."""
    import textwrap

    import trio

    from hubbub.client import connect as client_connect

    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    (snippet,) = [b for b in blocks if "recover=True" in b]
    config = tmp_path / "hubbub.toml"
    config.write_text('[[channels]]\nmatch = "chat/*"\nhistory_size = 100\nhistory_ttl = 600\n')
    server = start_process(
        [sys.executable, "-m", "hubbub.cluster", "run", "--port", "0", "--config", str(config)], cwd=tmp_path
    )
    printed: list[tuple[Any, ...]] = []
    namespace: dict[str, Any] = {"print": lambda *args: printed.append(args)}
    exec("async def follow(client):\n" + textwrap.indent(snippet, "    "), namespace)

    async def main() -> None:
        async with client_connect(server.url) as client, client_connect(server.url) as writer:
            with trio.move_on_after(TIMEOUT) as timeout:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(namespace["follow"], client)
                    # The snippet's subscription is on its way: publish until it prints one.
                    while not printed:
                        await writer.publish("chat/1", "hi")
                        await trio.sleep(0.02)
                    nursery.cancel_scope.cancel()
            assert not timeout.cancelled_caught

    try:
        trio.run(main)
    finally:
        assert server.stop() == 0
    (offset, data), *_ = printed
    assert data == "hi" and isinstance(offset, int) and offset >= 1
