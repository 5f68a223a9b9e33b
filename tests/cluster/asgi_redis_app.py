"""An AsgiEndpoint on Redis (``HUBBUB_TEST_BROKER``, ``HUBBUB_TEST_PREFIX``), for tests/cluster/test_asgi.py.

Run by several ASGI server processes at once, like ``uvicorn --workers N``: publications reach
the clients of every process through the broker.
"""

from __future__ import annotations

import os

from hubbub.cluster import App, AsgiEndpoint, ServerConfig

app = App()
endpoint = AsgiEndpoint(
    app,
    broker=os.environ["HUBBUB_TEST_BROKER"],
    broker_prefix=os.environ["HUBBUB_TEST_PREFIX"],
    config=ServerConfig(auth_key="one key for every process"),
)
