"""Testing kit for hubbub apps: serve an app in-process, connect clients, assert on what they received.

::

    from hubbub.testing import serve_app

    async def test_echo():
        async with serve_app(app) as server, server.connect() as client:
            assert await client.invoke("echo", {"a": 1}) == {"a": 1}

Works on trio and on asyncio (anyio's pytest plugin runs a test on both). The pytest fixtures
are in :mod:`hubbub.testing.plugin`. See ``docs/testing.md``.
"""

from ._client import AppClient as AppClient
from ._client import NothingReceived as NothingReceived
from ._serve import AppServer as AppServer
from ._serve import serve_app as serve_app
from ._serve import serve_app_in_thread as serve_app_in_thread

__all__ = ["AppClient", "AppServer", "NothingReceived", "serve_app", "serve_app_in_thread"]
