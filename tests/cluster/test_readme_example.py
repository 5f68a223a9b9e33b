"""The app in README.md runs as shown: ``hubbub run --app chat:app`` and a client can use it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
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


def _readme_block(language: str, marker: str) -> str:
    readme = (ROOT / "README.md").read_text()
    (block,) = [b for b in re.findall(rf"```{language}\n(.*?)```", readme, re.S) if marker in b]
    return block


def _chat_server(tmp_path: Path) -> Any:
    (tmp_path / "chat.py").write_text(_readme_app())
    command = [sys.executable, "-m", "hubbub.cluster", "run", "--port", "0", "--app", "chat:app"]
    return start_process([*command, "--auth-key", "k"], cwd=tmp_path)


def test_readme_app_guards_publishing(tmp_path: Path) -> None:
    server = _chat_server(tmp_path)
    try:
        with connect(server.url, open_timeout=TIMEOUT) as ws:
            ws.send(json.dumps({"event": "#handshake", "data": {"authToken": None}, "cid": 1}))
            _next_packet(ws)
            ws.send(json.dumps({"event": "#publish", "data": {"channel": "room", "data": 1}, "cid": 2}))
            blocked = _next_packet(ws)
            assert (blocked["rid"], blocked["error"]["name"]) == (2, "NotAuthenticatedError")
        # The README's publisher logs in first, then publishes and calls echo: it runs as written.
        script = _readme_block("python", 'publish("room"')
        script = script.replace("ws://localhost:8000/socketcluster/", server.url)
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "{'a': 1}"
    finally:
        assert server.stop() == 0


def test_readme_js_snippet_runs(tmp_path: Path) -> None:
    modules = ROOT / "tests" / "interop" / "node_modules"
    if shutil.which("node") is None or not modules.is_dir():
        pytest.fail("node and tests/interop/node_modules are required (run `make install`)")
    server = _chat_server(tmp_path)
    port = server.url.rsplit(":", 1)[1].split("/", 1)[0]
    listen = tmp_path / "listen.js"
    listen.write_text(_readme_block("js", "listen.js").replace("port: 8000", f"port: {port}"))
    node = subprocess.Popen(
        ["node", str(listen)],
        cwd=tmp_path,
        env={**os.environ, "NODE_PATH": str(modules)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        async def publish_until_printed() -> str:
            from hubbub.client import connect as client_connect

            lines: list[str] = []
            async with client_connect(server.url) as client, trio.open_nursery() as nursery:
                await client.invoke("login", {"username": "bob"})

                async def read() -> None:
                    assert node.stdout is not None
                    lines.append(await trio.to_thread.run_sync(node.stdout.readline))
                    nursery.cancel_scope.cancel()

                nursery.start_soon(read)
                with trio.fail_after(TIMEOUT * 2):
                    # The snippet subscribes after its login: publish until it prints one.
                    while True:
                        await client.publish("private/room", {"text": "hi"})
                        await trio.sleep(0.05)
            return lines[0]

        assert trio.run(publish_until_printed).strip() == "{ text: 'hi' }"
    finally:
        node.kill()
        node.wait(5)
        if node.stdout is not None:
            node.stdout.close()
        assert server.stop() == 0
