"""An AsgiEndpoint as the top-level ASGI app, with tight limits, for tests/cluster/test_asgi.py."""

from __future__ import annotations

import logging
import os

from hubbub.cluster import Action, ActionType, App, AsgiEndpoint, Request, SCError, ServerConfig, ServerSocket

if os.environ.get("HUBBUB_TEST_FRAMES"):  # frame tracing, as `hubbub run --log-level DEBUG` has it
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("hubbub.frames").setLevel(logging.DEBUG)

app = App()
endpoint = AsgiEndpoint(
    app,
    config=ServerConfig(
        origins=("allowed.example:*",),
        max_payload=32 * 1024,
        outbound_limit=256 * 1024,  # congested past it: publishers to its channels wait
        outbound_hard_limit=1 << 20,  # a stalled subscriber is closed past it (4010)
        slow_consumer_timeout=2.0,
        close_timeout=1.0,
        ping_interval=30.0,  # no pong timeout within a test: a stalled peer is dropped for its backlog
        ping_timeout=60.0,
    ),
)
#: The close codes of the connections that ended, in order.
closes: list[int] = []


@app.middleware("handshake")
async def handshake(action: Action) -> None:
    assert action.request is not None
    if action.type is ActionType.HANDSHAKE_WS and action.request.query.get("deny") == "1":
        action.block(SCError("denied by the test middleware", name="DeniedError"))


@app.procedure("flood")
async def flood(request: Request) -> int:
    """Publish ``count`` messages of ``size`` characters on ``channel`` (more than a stalled reader takes)."""
    for index in range(request.data["count"]):
        await app.publish(request.data["channel"], f"{index}:" + "x" * request.data["size"])
    return int(request.data["count"])


@app.on_disconnection
async def ended(socket: ServerSocket, code: int, reason: str) -> None:
    closes.append(code)


@app.procedure("closes")
async def closes_so_far(request: Request) -> list[int]:
    return closes
