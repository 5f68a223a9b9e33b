"""The errors of the HTTP server API: Centrifugo's codes, and the one for a body of the wrong shape."""

from __future__ import annotations

from typing import Any

__all__ = [
    "BAD_REQUEST",
    "INTERNAL",
    "NOT_AVAILABLE",
    "NOT_FOUND",
    "UNKNOWN_CHANNEL",
    "UNRECOVERABLE_POSITION",
    "ApiError",
    "BadShape",
    "result_name",
]

#: Centrifugo's error codes (``internal/apiproto/errors.go``), with its messages.
INTERNAL = 100
UNKNOWN_CHANNEL = 102
NOT_FOUND = 104
BAD_REQUEST = 107
NOT_AVAILABLE = 108
UNRECOVERABLE_POSITION = 112

_MESSAGES = {
    INTERNAL: "internal server error",
    UNKNOWN_CHANNEL: "unknown channel",
    NOT_FOUND: "not found",
    BAD_REQUEST: "bad request",
    NOT_AVAILABLE: "not available",
    UNRECOVERABLE_POSITION: "unrecoverable position",
}
#: How each code is counted in the metrics (``hubbub_api_calls{result=...}``).
_RESULTS = {
    INTERNAL: "internal",
    UNKNOWN_CHANNEL: "unknown_channel",
    NOT_FOUND: "not_found",
    BAD_REQUEST: "bad_request",
    NOT_AVAILABLE: "not_available",
    UNRECOVERABLE_POSITION: "unrecoverable_position",
}


class ApiError(Exception):
    """An error answered in the body (HTTP 200): ``{"error": {"code": N, "message": "..."}}``.

    The message is Centrifugo's for the code, followed by ``: detail`` when there is one.
    """

    def __init__(self, code: int, detail: str = "") -> None:
        self.code = code
        base = _MESSAGES.get(code, "error")
        self.message = f"{base}: {detail}" if detail else base
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


class BadShape(Exception):
    """A request body of the wrong shape (HTTP 400); ``field`` names where, as ``a.b[2].c``."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


def result_name(error: ApiError | None) -> str:
    """The ``result`` label of a call: ``ok`` or the error's kind."""
    return "ok" if error is None else _RESULTS.get(error.code, "error")
