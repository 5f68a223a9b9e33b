"""``model=`` on procedures and receivers: data converted with msgspec or pydantic, or a clear error."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import msgspec
import pydantic
import pytest

from hubbub.client import RemoteError
from hubbub.cluster import App, Request, ServerSocket
from hubbub.testing import serve_app


class Move(msgspec.Struct):
    x: int
    y: int = 0


class Login(pydantic.BaseModel):
    username: str
    remember: bool = False


@dataclasses.dataclass
class Point:
    x: float


def make_app() -> App:
    app = App()

    @app.procedure("move", model=Move)
    async def move(request: Request) -> Any:
        assert isinstance(request.data, Move)
        return {"sum": request.data.x + request.data.y}

    @app.procedure("login", model=Login)
    async def login(request: Request) -> Any:
        assert isinstance(request.data, Login)
        return request.data.model_dump()

    @app.procedure("point", model=Point)
    async def point(request: Request) -> Any:
        return type(request.data).__name__

    @app.receiver("typed", model=Move)
    async def typed(socket: ServerSocket, data: Move) -> None:
        socket.transmit("moved", data.x)

    return app


async def _invoke_error(client: Any, procedure: str, data: Any) -> RemoteError:
    with pytest.raises(RemoteError) as caught:
        await client.invoke(procedure, data)
    return caught.value


@pytest.mark.trio
async def test_valid_data_arrives_as_the_model() -> None:
    async with serve_app(make_app()) as server, server.connect() as client:
        assert await client.invoke("move", {"x": 2, "y": 3}) == {"sum": 5}
        assert await client.invoke("login", {"username": "alice"}) == {"username": "alice", "remember": False}
        assert await client.invoke("point", {"x": 1.5}) == "Point"


@pytest.mark.trio
async def test_invalid_data_gets_invalid_arguments_naming_the_field() -> None:
    async with serve_app(make_app()) as server, server.connect() as client:
        error = await _invoke_error(client, "move", {"x": "two"})
        assert error.name == "InvalidArgumentsError"
        assert error.message == "Invalid arguments for procedure 'move': Expected `int`, got `str` - at `$.x`"
        error = await _invoke_error(client, "move", "not an object")
        assert error.name == "InvalidArgumentsError"
        error = await _invoke_error(client, "login", {"remember": True})
        assert error.name == "InvalidArgumentsError"
        assert error.message == "Invalid arguments for procedure 'login': username: Field required"
        # the socket stays usable
        assert await client.invoke("move", {"x": 1}) == {"sum": 1}


@pytest.mark.trio
async def test_a_receiver_drops_invalid_data_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hubbub.app")
    async with serve_app(make_app()) as server, server.connect() as client:
        await client.transmit("typed", {"x": "bad"})
        await client.transmit("typed", {"x": 7})
        assert await client.receive("moved") == 7  # receivers run in order: the bad one came first
        assert client.received == [("moved", 7)]
    dropped = [r.getMessage() for r in caplog.records if "dropped a transmit" in r.getMessage()]
    assert len(dropped) == 1 and "receiver 'typed'" in dropped[0]


def test_a_model_no_library_handles_is_refused_at_registration() -> None:
    app = App()
    with pytest.raises(TypeError, match="procedure 'x'"):
        app.procedure("x", model=42)
    with pytest.raises(TypeError, match="receiver 'y'"):
        app.receiver("y", model=3.5)


def test_without_a_model_the_function_is_registered_as_is() -> None:
    app = App()

    async def plain(request: Request) -> None:
        pass

    assert app.procedure("plain")(plain) is plain
    assert app.procedures["plain"] is plain
