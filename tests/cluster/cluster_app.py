"""The app the cluster tests run: it tells a client which worker process it is connected to."""

from __future__ import annotations

import os

from hubbub.cluster import App, Request

app = App()


@app.procedure("worker")
async def worker(request: Request) -> dict[str, int]:
    del request
    return {"pid": os.getpid()}


@app.procedure("login")
async def login(request: Request) -> None:
    """Authenticate the caller as the user named in the call's data (claim ``sub``)."""
    await request.socket.set_auth_token({"sub": request.data})
