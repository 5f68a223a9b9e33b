"""The app of tests/hostile/test_exposure.py: procedures and middleware that fail as app code does.

Each failure carries a detail a client must not learn (a path, a key, a Python type name).
"""

from __future__ import annotations

from typing import Any

from hubbub.cluster import Action, ActionType, App, Request

app = App()

#: The detail each failing procedure's exception carries.
SECRET_PATH = "/srv/hubbub-secret/config.toml"


@app.middleware("inbound")
async def inbound(action: Action) -> None:
    if action.type is ActionType.INVOKE and action.procedure == "middlewareRaises":
        raise ValueError(f"middleware could not read {SECRET_PATH}")
    if action.type is ActionType.SUBSCRIBE and action.channel == "middlewareRaises":
        raise KeyError("internal-acl-table")


@app.middleware("handshake")
async def handshake(action: Action) -> None:
    assert action.request is not None
    if action.type is ActionType.HANDSHAKE_SC and action.request.query.get("boom") == "1":
        raise RuntimeError(f"handshake check failed reading {SECRET_PATH}")
    if action.type is ActionType.HANDSHAKE_WS and action.request.query.get("boom") == "ws":
        raise OSError(2, "No such file or directory", SECRET_PATH)


@app.procedure("echo")
async def echo(request: Request) -> Any:
    return request.data


@app.procedure("openFile")
async def open_file(request: Request) -> Any:
    with open(SECRET_PATH) as file:  # noqa: ASYNC230 - fails at once: the file does not exist
        return file.read()


@app.procedure("lookUp")
async def look_up(request: Request) -> Any:
    table: dict[str, str] = {}
    return table["internal-acl-table"]


@app.procedure("subscript")
async def subscript(request: Request) -> Any:
    return request.data["field"]


@app.procedure("unserializable")
async def unserializable(request: Request) -> Any:
    return {"value": object()}


@app.procedure("unserializableInBatch")
async def unserializable_in_batch(request: Request) -> Any:
    request.socket.start_batch()
    request.socket.transmit("batched", 1)
    request.end({"value": object()})
    request.socket.flush_batch()
    return None


@app.procedure("plainError")
async def plain_error(request: Request) -> Any:
    raise Exception("plain Error object")
