"""hubbub served through an ASGI server (the ``hubbub-asgi`` target of bench/run.py and bench/loops.py).

An :class:`~hubbub.cluster.AsgiEndpoint` as the top-level ASGI app, with the settings the suite
gives ``hubbub run`` (JSON codec, pings every 4 s, a 64 MiB outbound limit); uvicorn or hypercorn
serves it on ``HUBBUB_BENCH_PORT`` and the app says where once its worker runs.
"""

from __future__ import annotations

import os

from hubbub.cluster import App, AsgiEndpoint, ServerConfig

app = App()
endpoint = AsgiEndpoint(
    app,
    config=ServerConfig(codec="json", ping_interval=4.0, ping_timeout=20.0, outbound_limit=64 * 2**20),
)


@app.on_startup
async def announce() -> None:
    print(f"listening on ws://127.0.0.1:{os.environ['HUBBUB_BENCH_PORT']}/socketcluster/", flush=True)
