"""Checking a procedure's or a receiver's data against a model (msgspec or pydantic, if installed).

``@app.procedure("x", model=M)`` converts ``request.data`` to an ``M`` before the procedure runs;
data that does not fit is answered with an ``InvalidArgumentsError`` naming the field. A
``msgspec.Struct`` is converted with msgspec, a ``pydantic.BaseModel`` with pydantic; any other type
(a dataclass, a ``TypedDict``, ``list[int]``) with msgspec if it is installed, else with pydantic.
Neither library is a dependency of hubbub: the one the model needs must be installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from hubbub.protocol import SCError

__all__ = ["INVALID_ARGUMENTS", "Converter", "converter_for"]

#: The error name of data that does not fit the model.
INVALID_ARGUMENTS = "InvalidArgumentsError"

Converter = Callable[[Any], Any]


def converter_for(model: Any, where: str) -> Converter:
    """A function that turns data into a ``model`` or raises an :class:`SCError` saying why not.

    ``where`` names the procedure or receiver in the error. Raises :class:`TypeError` at
    registration when no installed library can handle ``model``.
    """
    msgspec = _optional("msgspec")
    pydantic = _optional("pydantic")
    if pydantic is not None and isinstance(model, type) and issubclass(model, pydantic.BaseModel):
        validate: Converter = model.model_validate  # type: ignore[attr-defined]
        return _pydantic(validate, where, pydantic)
    if msgspec is not None:
        return _msgspec(model, where, msgspec)
    if pydantic is not None:
        return _pydantic(pydantic.TypeAdapter(model).validate_python, where, pydantic)
    raise TypeError(f"{where}: model={model!r} needs msgspec or pydantic installed")


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _invalid(where: str, detail: str) -> SCError:
    return SCError(f"Invalid arguments for {where}: {detail}", name=INVALID_ARGUMENTS)


def _msgspec(model: Any, where: str, msgspec: Any) -> Converter:
    try:
        msgspec.json.Decoder(model)  # checks that msgspec knows how to build the type
    except Exception as error:
        raise TypeError(f"{where}: msgspec cannot convert to {model!r}: {error}") from None

    def convert(data: Any) -> Any:
        try:
            return msgspec.convert(data, model)
        except msgspec.ValidationError as error:
            raise _invalid(where, str(error)) from None

    return convert


def _pydantic(validate: Converter, where: str, pydantic: Any) -> Converter:
    def convert(data: Any) -> Any:
        try:
            return validate(data)
        except pydantic.ValidationError as error:
            raise _invalid(where, _pydantic_detail(error)) from None

    return convert


def _pydantic_detail(error: Any) -> str:
    """One line per problem, ``field.path: message``, without pydantic's URLs and input echo."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in item.get("loc", ())) or "data"
        problems.append(f"{path}: {item.get('msg', 'invalid')}")
    return "; ".join(problems)
