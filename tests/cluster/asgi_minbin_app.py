"""An AsgiEndpoint speaking sc-codec-min-bin (binary frames), for tests/cluster/test_asgi.py."""

from __future__ import annotations

from hubbub.cluster import App, AsgiEndpoint, Request, ServerConfig

app = App()
endpoint = AsgiEndpoint(app, config=ServerConfig(codec="minbin"))


@app.procedure("echo")
async def echo(request: Request) -> object:
    return request.data
