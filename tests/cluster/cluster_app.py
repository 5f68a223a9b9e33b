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


@app.procedure("history")
async def history(request: Request) -> dict[str, object]:
    """``app.history`` of ``data["channel"]`` with the other keys as its arguments."""
    args = dict(request.data)
    try:
        page = await app.history(args.pop("channel"), **args)
    except ValueError as error:  # a channel without history: tell the client why
        raise Exception(str(error)) from None
    return {
        "entries": [[entry.offset, entry.data] for entry in page.entries],
        "position": [page.position.offset, page.position.epoch],
    }
