"""The worker on asyncio: an asyncio-only app runs on ``--loop asyncio`` and fails clearly on trio;
``hubbub.cluster.serve`` embeds a worker in a running asyncio or trio program."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
import trio

from hubbub.broker import MemoryBroker
from hubbub.client import connect
from hubbub.cluster import App, Request, Server, ServerConfig, bind_listener, serve
from hubbub.cluster.settings import SettingsError, load_settings

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from conftest import start_process, stop_and_close  # noqa: E402

pytestmark = pytest.mark.redis


def _start_asyncio_app(redis_url: str, loop: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("HUBBUB_TEST_REDIS", redis_url)
    cmd = [sys.executable, "-m", "hubbub.cluster", "run", "--port", "0", "--app", "asyncio_app:app"]
    return start_process([*cmd, "--loop", loop], cwd=HERE)


async def _invoke(url: str, procedure: str, data: Any) -> Any:
    async with connect(url) as client:
        return await client.invoke(procedure, data, timeout=10)


def test_asyncio_only_app_runs_on_loop_asyncio(redis_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = _start_asyncio_app(redis_server.url, "asyncio", monkeypatch)
    key = uuid.uuid4().hex
    try:
        first = anyio.run(_invoke, server.url, "visit", key)
        second = anyio.run(_invoke, server.url, "visit", key, backend="asyncio")
        relayed = anyio.run(_invoke, server.url, "relay", {"n": 1})
    finally:
        stop_and_close([server])
    assert (first, second) == ({"visits": 1}, {"visits": 2})
    assert relayed == {"n": 1}


def test_asyncio_only_app_on_trio_fails_with_one_clear_line(
    redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = _start_asyncio_app(redis_server.url, "trio", monkeypatch)
    try:
        with pytest.raises(Exception, match="--loop asyncio") as raised:
            anyio.run(_invoke, server.url, "visit", "x")
    finally:
        stop_and_close([server])
    expected = "procedure 'visit' uses asyncio, but this worker runs on trio: run it with --loop asyncio"
    assert expected in str(raised.value)
    logged = [line for line in server.lines if "--loop asyncio" in line]
    assert len(logged) == 1 and expected in logged[0], server.lines
    assert not any("Traceback" in line for line in server.lines), server.lines


def _embedded_app(sleep: Any) -> App:
    app = App()

    @app.procedure("nap")
    async def nap(request: Request) -> Any:
        await sleep(0.01)  # the host program's own library
        return {"slept": request.data}

    return app


async def _embed_and_use(app: App) -> tuple[Any, Any]:
    async with serve(app, host="127.0.0.1", port=0) as url:
        assert url.startswith("ws://127.0.0.1:") and url.endswith("/socketcluster/")
        async with connect(url) as client, client.subscribe("news") as channel:
            await channel.wait_subscribed(timeout=5)
            answer = await client.invoke("nap", 3, timeout=5)
            await app.publish("news", {"headline": "embedded"})
            with anyio.fail_after(5):
                published = await channel.__anext__()
    return answer, published


def test_serve_embeds_a_worker_in_an_asyncio_program() -> None:
    app = _embedded_app(asyncio.sleep)
    answer, published = asyncio.run(_embed_and_use(app))
    assert answer == {"slept": 3}
    assert published == {"headline": "embedded"}


def test_serve_embeds_a_worker_in_a_trio_program() -> None:
    app = _embedded_app(trio.sleep)
    answer, published = trio.run(_embed_and_use, app)
    assert answer == {"slept": 3}
    assert published == {"headline": "embedded"}


def test_serve_with_the_other_loops_app_names_the_loop() -> None:
    """An app for trio embedded in an asyncio program: the client is told which loop it needs."""
    app = _embedded_app(trio.sleep)

    async def main() -> None:
        async with serve(app) as url, connect(url) as client:
            await client.invoke("nap", 1, timeout=5)

    with pytest.raises(Exception, match=r"procedure 'nap' uses trio, but this worker runs on asyncio"):
        asyncio.run(main())


def test_a_worker_set_up_for_trio_refuses_to_serve_on_asyncio() -> None:
    server = Server(App(), ServerConfig(loop="trio"), MemoryBroker())
    listener = bind_listener("127.0.0.1", 0)
    try:
        with pytest.raises(RuntimeError, match=r"set up for --loop trio but runs on asyncio"):
            asyncio.run(server.serve(listener))
    finally:
        listener.close()


def test_an_unknown_loop_setting_is_refused() -> None:
    with pytest.raises(SettingsError, match="loop"):
        load_settings({"loop": "gevent"}, {})
