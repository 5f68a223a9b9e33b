"""The hubbub twin of sc_server.js: the same procedures, receivers and middleware.

The interop scenarios run against both servers; whatever the official client sees from one it
must see from the other.
"""

from __future__ import annotations

from typing import Any

import anyio

from hubbub.cluster import Action, ActionType, App, Request, ServerSocket
from hubbub.protocol import SCError

app = App()


@app.middleware("handshake")
async def handshake(action: Action) -> None:
    assert action.request is not None
    query = action.request.query
    if action.type is ActionType.HANDSHAKE_WS and query.get("deny") == "1":
        action.block(SCError("WS handshake denied by test middleware", name="DeniedError"))
    elif action.type is ActionType.HANDSHAKE_SC and query.get("reject") == "1":
        fields = {"statusCode": int(query["status"])} if "status" in query else {}
        action.block(SCError("SC handshake rejected by test middleware", name="RejectedError", **fields))


@app.middleware("inbound")
async def inbound(action: Action) -> None:
    if action.type is ActionType.SUBSCRIBE and action.channel == "forbidden":
        action.block(SCError("You may not subscribe to forbidden", name="SubscribeForbiddenError"))
    elif action.type is ActionType.PUBLISH_IN and action.channel == "readonly":
        action.block(SCError("Channel readonly is read-only", name="PublishForbiddenError"))
    elif action.type is ActionType.INVOKE and action.procedure == "silentBlock":
        action.block()
    elif action.type is ActionType.TRANSMIT and action.receiver == "blockedTransmit":
        action.block(Exception("transmit blocked"))


@app.middleware("outbound")
async def outbound(action: Action) -> None:
    if action.type is ActionType.PUBLISH_OUT and action.channel == "hidden":
        action.block()


@app.procedure("echo")
async def echo(request: Request) -> Any:
    return request.data


@app.procedure("fail")
async def fail(request: Request) -> Any:
    raise SCError("Procedure fail always fails", name="MyCustomError", code="E_FAIL")


@app.procedure("failPlain")
async def fail_plain(request: Request) -> Any:
    raise Exception("plain Error object")


@app.procedure("login")
async def login(request: Request) -> Any:
    await request.socket.set_auth_token({"username": request.data["username"]})
    return "logged-in"


@app.procedure("loginAck")
async def login_ack(request: Request) -> Any:
    await request.socket.set_auth_token(
        {"username": request.data["username"]}, reject_on_failed_delivery=True
    )
    return "logged-in-ack"


@app.procedure("loginShort")
async def login_short(request: Request) -> Any:
    await request.socket.set_auth_token({"username": request.data["username"]}, expires_in=1)
    return "logged-in-1s"


@app.procedure("logoutAck")
async def logout_ack(request: Request) -> Any:
    await request.socket.deauthenticate(reject_on_failed_delivery=True)
    return "logged-out-ack"


@app.procedure("whoami")
async def whoami(request: Request) -> Any:
    request.end(request.socket.auth_token)  # null when unauthenticated, as socket.authToken


@app.procedure("logoutServer")
async def logout_server(request: Request) -> Any:
    await request.socket.deauthenticate()
    return "logged-out"


@app.procedure("kickMe")
async def kick_me(request: Request) -> Any:
    request.socket.kick_out(request.data["channel"], "you have been kicked")
    return None


@app.procedure("serverInvoke")
async def server_invoke(request: Request) -> Any:
    answer = await request.socket.invoke("clientProc", {"question": "ping?"})
    return {"clientAnswered": answer}


@app.procedure("serverPublish")
async def server_publish(request: Request) -> Any:
    await app.publish("room", {"from": "server", "via": "transmitPublish"})
    await app.publish("room", {"from": "server", "via": "invokePublish"})
    await app.publish("hidden", {"from": "server", "note": "blocked by outbound middleware"})
    return None


@app.procedure("batchReply")
async def batch_reply(request: Request) -> Any:
    socket = request.socket
    socket.start_batch()
    socket.transmit("batched", 1)
    socket.transmit("batched", 2)
    request.end("batch-done")
    socket.flush_batch()
    return None


@app.procedure("dropMe")
async def drop_me(request: Request) -> Any:
    request.end()
    await anyio.sleep(0.05)
    request.socket.disconnect(4100, "dropped by test")
    return None


@app.procedure("never")
async def never(request: Request) -> Any:
    await anyio.sleep_forever()


@app.receiver("greet")
async def greet(socket: ServerSocket, data: Any) -> None:
    socket.transmit("greetBack", {"hello": data})


@app.receiver("binary")
async def binary(socket: ServerSocket, data: Any) -> None:
    socket.transmit("binaryBack", {"buf": b"hubbub", "ab": bytes([0, 255])})


@app.receiver("stall")
async def stall(socket: ServerSocket, data: Any) -> None:
    """hubbub only (tests/hostile): a receiver that never returns, to pile up pending calls."""
    await anyio.sleep_forever()
