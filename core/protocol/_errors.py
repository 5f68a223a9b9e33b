"""SocketCluster errors in the sc-errors 3.0 shape, and their (de)hydration.

On the wire an error is a JSON-like object: ``{"message": ..., "name": ..., **fields}``.
:class:`SCError` is the Python side of it: ``name`` and ``message`` plus any extra fields.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthTokenError",
    "AuthTokenExpiredError",
    "AuthTokenInvalidError",
    "AuthTokenNotBeforeError",
    "BrokerError",
    "InvalidActionError",
    "InvalidMessageError",
    "SCError",
    "SilentMiddlewareBlockedError",
    "dehydrate_error",
    "hydrate_error",
]


class SCError(Exception):
    """An error that can travel over the SocketCluster protocol.

    ``name`` is the error class name the peer sees (``"BrokerError"``, ``"MyCustomError"`` ...),
    ``message`` the human-readable text, ``fields`` any extra members (``code``, ``isBadToken`` ...)
    in the order they are sent.
    """

    default_name = "Error"

    def __init__(self, message: str, name: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.name = name if name is not None else self.default_name
        self.fields: dict[str, Any] = fields

    def to_wire(self) -> dict[str, Any]:
        """The dehydrated form: ``message``, then ``name``, then the extra fields."""
        wire: dict[str, Any] = {"message": self.message, "name": self.name}
        wire.update(self.fields)
        return wire

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.fields.items())
        return f"{type(self).__name__}({self.message!r}, name={self.name!r}{extra})"

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


def _named(cls_name: str, doc: str) -> type[SCError]:
    return type(cls_name, (SCError,), {"default_name": cls_name, "__module__": __name__, "__doc__": doc})


BrokerError = _named("BrokerError", "The broker could not take or deliver a publication.")
InvalidActionError = _named("InvalidActionError", "The peer asked for something it may not do now.")
InvalidMessageError = _named("InvalidMessageError", "A packet had the wrong shape for its event.")
SilentMiddlewareBlockedError = _named(
    "SilentMiddlewareBlockedError", "Middleware blocked an action without an error of its own."
)
AuthTokenError = _named("AuthTokenError", "An auth token could not be read.")
AuthTokenExpiredError = _named("AuthTokenExpiredError", "An auth token's ``exp`` has passed.")
AuthTokenInvalidError = _named("AuthTokenInvalidError", "An auth token failed verification.")
AuthTokenNotBeforeError = _named("AuthTokenNotBeforeError", "An auth token's ``nbf`` is still ahead.")


def dehydrate_error(error: BaseException | str | dict[str, Any]) -> Any:
    """Turn ``error`` into the value sent in a response's ``error`` field.

    An :class:`SCError` sends its name and fields; any other exception sends only
    ``{"message": str(error)}``, as sc-errors does for a plain ``Error``. Strings and dicts pass through.
    """
    if isinstance(error, SCError):
        return error.to_wire()
    if isinstance(error, BaseException):
        return {"message": str(error)}
    return error


def hydrate_error(value: Any) -> SCError | None:
    """Turn a received ``error`` field into an :class:`SCError`; ``None`` means success."""
    if value is None:
        return None
    if isinstance(value, dict):
        message = value.get("message")
        if not isinstance(message, str):
            message = "Invalid error message format"
        name = value.get("name")
        fields = {k: v for k, v in value.items() if k not in ("message", "name")}
        return SCError(message, name if isinstance(name, str) else "Error", **fields)
    return SCError(str(value))
